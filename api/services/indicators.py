"""The office's indicators (docs/indicators.md), per quarter with trends, for one person:
timeliness (entered → archived), completeness (records missing required fields or pages),
and, from the sampling audits, accuracy (findings per item sampled) and the error rate; the
counts by business type, year and class, and status changes per year.

The dashboard (``/``) and ``GET /api/v1/stats/indicators`` (JSON or CSV) call
:func:`office_indicators`; every figure counts only the records the person may see.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from api.services.access import require_action
from api.services.csvcells import safe_cell
from api.services.runtime import Runtime
from catalog import Action, UserInfo, list_audits, list_findings, list_items
from catalog.indicators import (
    QuarterIntake,
    count_by,
    intake_by_quarter,
    status_changes_by_year,
)

__all__ = [
    "STATUS_CHANGE_TYPES",
    "Indicators",
    "QuarterFigures",
    "SamplingQuarter",
    "indicators_csv",
    "office_indicators",
    "sampling_by_quarter",
]

STATUS_CHANGE_TYPES: Final = ("学籍变更", "转学", "休学", "复学")
"""The business types that record a student's status change (学籍变动)."""


@dataclass(frozen=True)
class SamplingQuarter:
    """What a quarter's sampling audit found: items sampled and found defective, findings."""

    sampled: int
    defective: int
    findings: int


@dataclass(frozen=True)
class QuarterFigures:
    quarter: str
    entered: int
    archived: int
    mean_hours: float | None
    p90_hours: float | None
    incomplete_fields: int
    incomplete_pages: int
    sampled: int | None = None  # None: no sampling audit of this quarter
    defective: int | None = None
    findings: int | None = None

    @property
    def completeness(self) -> float | None:
        """The share of entered records missing neither a required field nor a page."""
        if not self.entered:
            return None
        incomplete = min(self.entered, self.incomplete_fields + self.incomplete_pages)
        return 1 - incomplete / self.entered

    @property
    def accuracy(self) -> float | None:
        """Findings per item sampled (lower is better)."""
        return self.findings / self.sampled if self.sampled and self.findings is not None else None

    @property
    def error_rate(self) -> float | None:
        """Defective items over items sampled."""
        return (
            self.defective / self.sampled if self.sampled and self.defective is not None else None
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "quarter": self.quarter,
            "entered": self.entered,
            "archived": self.archived,
            "mean_hours_to_archive": _round(self.mean_hours),
            "p90_hours_to_archive": _round(self.p90_hours),
            "incomplete_fields": self.incomplete_fields,
            "incomplete_pages": self.incomplete_pages,
            "completeness": _round(self.completeness, 4),
            "sampled": self.sampled,
            "defective": self.defective,
            "findings": self.findings,
            "accuracy": _round(self.accuracy, 4),
            "error_rate": _round(self.error_rate, 4),
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class Indicators:
    as_of: dt.datetime
    quarters: tuple[QuarterFigures, ...]
    by_type: tuple[tuple[str, int], ...]
    by_year: tuple[tuple[str, int], ...]
    by_class: tuple[tuple[str, int], ...]
    status_changes: tuple[tuple[int, str, int], ...]
    trends: Mapping[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "quarters": [q.as_dict() for q in self.quarters],
            "trends": dict(self.trends),
            "by_type": [{"business_type": k, "records": n} for k, n in self.by_type],
            "by_year": [{"year": int(k), "records": n} for k, n in self.by_year],
            "by_class": [{"student_class": k, "records": n} for k, n in self.by_class],
            "status_changes": [
                {"year": y, "business_type": t, "records": n} for y, t, n in self.status_changes
            ],
        }


def _figures(q: QuarterIntake, sampling: SamplingQuarter | None) -> QuarterFigures:
    return QuarterFigures(
        quarter=q.quarter,
        entered=q.entered,
        archived=q.archived,
        mean_hours=q.mean_hours,
        p90_hours=q.percentile_hours(0.9),
        incomplete_fields=q.incomplete_fields,
        incomplete_pages=q.incomplete_pages,
        sampled=sampling.sampled if sampling else None,
        defective=sampling.defective if sampling else None,
        findings=sampling.findings if sampling else None,
    )


def _trends(quarters: tuple[QuarterFigures, ...]) -> dict[str, float | None]:
    """The latest quarter against the one before: differences (positive = went up)."""
    if len(quarters) < 2:
        return {}
    last, before = quarters[-1], quarters[-2]

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a - b, 4)

    return {
        "entered": float(last.entered - before.entered),
        "mean_hours_to_archive": diff(last.mean_hours, before.mean_hours),
        "completeness": diff(last.completeness, before.completeness),
        "error_rate": diff(last.error_rate, before.error_rate),
    }


def office_indicators(
    rt: Runtime,
    user: UserInfo,
    *,
    sampling: Mapping[str, SamplingQuarter] | None = None,
    now: dt.datetime | None = None,
) -> Indicators:
    """The indicators as ``user`` may see them.

    :param sampling: what each quarter's sampling audit found, by quarter (``2026Q3``).
    :raises PermissionDeniedError: ``user`` may not read the figures (``stats.read``).
    """
    require_action(rt, user, Action.stats_read)
    rules = rt.settings.check
    with rt.db.read() as session:
        intake = intake_by_quarter(
            session,
            user,
            required_fields=rules.required_fields,
            no_student_types=rules.no_student_types,
        )
        by_type = count_by(session, user, "type")
        by_year = count_by(session, user, "year")
        by_class = count_by(session, user, "class")
        changes = status_changes_by_year(session, user, STATUS_CHANGE_TYPES)
    found = dict(sampling or {})
    names = sorted({q.quarter for q in intake} | set(found))
    by_quarter = {q.quarter: q for q in intake}
    quarters = tuple(
        _figures(by_quarter.get(n, QuarterIntake(n, 0, 0, (), 0, 0)), found.get(n)) for n in names
    )
    return Indicators(
        as_of=now or dt.datetime.now(dt.UTC),
        quarters=quarters,
        by_type=tuple(by_type),
        by_year=tuple(sorted(by_year)),
        by_class=tuple(by_class),
        status_changes=tuple(changes),
        trends=_trends(quarters),
    )


def sampling_by_quarter(rt: Runtime, user: UserInfo) -> dict[str, SamplingQuarter]:
    """What each quarter's sampling audit found, over the items ``user`` may see (a contract
    item counts for directors alone); the newest draw of a quarter counts."""
    found: dict[str, SamplingQuarter] = {}
    with rt.db.read() as session:
        for audit in list_audits(session):
            if audit.quarter in found:
                continue  # newest quarter and draw first: an older draw of it is superseded
            items = list_items(session, audit.id, who=user)
            findings = list_findings(session, who=user, audit_id=audit.id)
            found[audit.quarter] = SamplingQuarter(
                sampled=len(items),
                defective=sum(1 for i in items if i.is_defective),
                findings=len(findings),
            )
    return found


CSV_COLUMNS: Final = ("section", "key", "metric", "value")


def indicators_csv(ind: Indicators) -> str:
    """One row per figure: ``quarter,2026Q3,mean_hours_to_archive,3.5`` and so on."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for q in ind.quarters:
        for metric, value in q.as_dict().items():
            if metric != "quarter":
                w.writerow(["quarter", q.quarter, metric, "" if value is None else value])
    for metric, value in ind.trends.items():
        w.writerow(["trend", "latest", metric, "" if value is None else value])
    for section, rows in (("type", ind.by_type), ("year", ind.by_year), ("class", ind.by_class)):
        for key, n in rows:
            w.writerow([section, safe_cell(key), "records", n])
    for year, business_type, n in ind.status_changes:
        w.writerow(["status_change", f"{year} {business_type}", "records", n])
    return out.getvalue()
