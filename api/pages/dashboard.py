"""The dashboard at ``/``: the office's figures (``api.services.stats``) as charts and tiles.

Charts are inline SVG drawn on the server, with no script and no style attribute (the
Content-Security-Policy allows neither): this module works out the geometry, the template
draws it and ``api/static/dashboard.css`` colours it. Every chart also has its figures as a
table, and every tile is plain text, so nothing is only a picture. The figures are counted
over the records the person may see; a tile links to a page listing what it counts only when
the person may open that page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, render
from api.pages.labels import N_, label
from api.services import breakglass
from api.services.indicators import office_indicators, sampling_by_quarter
from api.services.review import awaiting_count
from api.services.sampling import overdue_findings
from api.services.schedule import states as schedule_states
from api.services.stats import dashboard
from catalog import ArchiveStats, RecordStatus, ScheduleState, UserInfo
from catalog.policy import Action, is_allowed

router = APIRouter(include_in_schema=False)

# Geometry, in SVG user units. The SVG scales to the width of its card, which is about this
# wide (``.columns`` in app.css), so that its text stays near the page's own size.
CHART_WIDTH: Final = 360
ROW: Final = 24  # one horizontal bar and the gap below it
BAR: Final = 16
LABEL_WIDTH: Final = 92  # the names left of the bars
VALUE_WIDTH: Final = 40  # the figure right of the longest bar
DAYS_HEIGHT: Final = 160
DAYS_AXIS: Final = 22  # the day labels under the bars
DAYS_TOP: Final = 18  # room for the figure over the tallest bar
HEAT_LEVELS: Final = 5


@dataclass(frozen=True)
class Bar:
    """One bar: what it counts, its figure, where it is drawn, and where it leads."""

    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    href: str | None = None


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, one per row; ``height`` is the SVG's."""

    bars: tuple[Bar, ...]
    height: int
    translate: bool  # the labels are messages (states), not data (business types)


@dataclass(frozen=True)
class DayChart:
    """Vertical bars for the intake per day; ``axis_y`` is the baseline."""

    bars: tuple[Bar, ...]
    axis_y: float
    height: int
    total: int


@dataclass(frozen=True)
class HeatCell:
    value: int
    level: int  # 0 (none) to HEAT_LEVELS (the most)
    href: str | None


@dataclass(frozen=True)
class HeatMap:
    """Records per year (rows, newest first) and business type (columns)."""

    types: tuple[str, ...]
    rows: tuple[tuple[int, tuple[HeatCell, ...], int], ...]  # year, cells, the year's total
    type_totals: tuple[int, ...]


@dataclass(frozen=True)
class Tile:
    """One figure worth watching; ``is_problem`` marks it when it is not zero."""

    id: str
    label: str  # a message
    value: int
    href: str | None
    is_problem: bool


def _records_link(user: UserInfo, **filters: str | int) -> str | None:
    if not is_allowed(user.role, Action.record_read_metadata):
        return None
    return "/records?" + urlencode(filters) if filters else "/records"


def horizontal_bars(
    items: Sequence[tuple[str, int, str | None]], *, translate: bool = False
) -> BarChart:
    """Bars for ``(label, value, link)`` items, in their order, scaled to the largest."""
    most = max((v for _, v, _ in items), default=0)
    room = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = []
    for i, (text, value, href) in enumerate(items):
        width = room * value / most if most else 0.0
        if value and width < 2:
            width = 2.0  # a non-zero count stays visible
        y = i * ROW + (ROW - BAR) / 2
        bars.append(Bar(text, value, LABEL_WIDTH, y, round(width, 1), BAR, href))
    return BarChart(tuple(bars), max(1, len(items)) * ROW, translate)


def day_bars(stats: ArchiveStats) -> DayChart:
    """Vertical bars for the records entered each day, oldest first."""
    days = stats.intake_by_day
    most = max((d.records for d in days), default=0)
    slot = CHART_WIDTH / max(1, len(days))
    axis_y = DAYS_HEIGHT - DAYS_AXIS
    room = axis_y - DAYS_TOP
    bars = []
    for i, d in enumerate(days):
        height = room * d.records / most if most else 0.0
        if d.records and height < 2:
            height = 2.0
        bars.append(
            Bar(
                str(d.day.day),  # the day of the month: a full date would not fit a bar's width
                d.records,
                round(i * slot + slot * 0.15, 1),
                round(axis_y - height, 1),
                round(slot * 0.7, 1),
                round(height, 1),
            )
        )
    return DayChart(tuple(bars), axis_y, DAYS_HEIGHT, sum(d.records for d in days))


def heat_map(stats: ArchiveStats, user: UserInfo) -> HeatMap:
    types = tuple(name for name, _ in stats.by_type)
    counts = {(c.year, c.business_type): c.records for c in stats.by_type_year}
    years = sorted({c.year for c in stats.by_type_year}, reverse=True)
    most = max(counts.values(), default=0)
    rows = []
    for year in years:
        cells = []
        for t in types:
            n = counts.get((year, t), 0)
            level = math.ceil(HEAT_LEVELS * n / most) if most else 0
            href = _records_link(user, type=t, year=year) if n else None
            cells.append(HeatCell(n, level, href))
        rows.append((year, tuple(cells), sum(c.value for c in cells)))
    totals = tuple(sum(counts.get((y, t), 0) for y in years) for t in types)
    return HeatMap(types, tuple(rows), totals)


def tiles(stats: ArchiveStats, user: UserInfo, review: Tile) -> tuple[Tile, ...]:
    queue = "/queue" if is_allowed(user.role, Action.record_read_metadata) else None
    under = _records_link(user, status=RecordStatus.under_replicated.value)
    return (
        Tile("tile-records", N_("Records kept"), stats.live_records, _records_link(user), False),
        Tile("tile-in-progress", N_("Intake in progress"), stats.in_progress, queue, False),
        review,
        Tile("tile-pages-failed", N_("Pages OCR could not read"), stats.pages_failed, None, True),
        Tile(
            "tile-low-confidence",
            N_("Pages read with low confidence"),
            stats.pages_low_confidence,
            None,
            True,
        ),
        Tile("tile-jobs-failed", N_("Failed jobs"), stats.jobs_failed, None, True),
        Tile(
            "tile-under-replicated",
            N_("Records missing a copy"),
            stats.under_replicated,
            under,
            True,
        ),
        Tile("tile-damaged", N_("Damaged or missing copies"), stats.copies_damaged, None, True),
        Tile(
            "tile-no-good-copy",
            N_("Records with no good copy"),
            stats.by_status.get(RecordStatus.damaged, 0),
            _records_link(user, status=RecordStatus.damaged.value),
            True,
        ),
    )


def review_tile(rt: Any, user: UserInfo) -> Tile:
    """Records waiting for a person at an intake review gate (docs/review.md), counted over
    the records the viewer may see, as the review queue (``/reviews``) lists them: a
    reviewer's every one, a clerk's own. Pages read with low confidence are a tile of their
    own; a record its quality rules flag meets 复核 and is counted here once it waits there."""
    reviewer = is_allowed(user.role, Action.record_review)
    clerk = not reviewer and is_allowed(user.role, Action.record_update_draft)
    return Tile(
        "tile-review",
        N_("Records to review"),
        awaiting_count(rt, user, mine=clerk),
        "/reviews" if reviewer or clerk else None,
        True,
    )


def findings_tile(rt: Any, user: UserInfo) -> Tile:
    """Sampling-audit findings past their 7-day deadline (docs/sampling.md), on records the
    viewer may see; it links to where the viewer deals with them."""
    if is_allowed(user.role, Action.sampling_run):
        href: str | None = "/sampling"
    elif is_allowed(user.role, Action.finding_respond):
        href = "/sampling/findings/mine"
    else:
        href = None
    return Tile(
        "tile-findings-overdue",
        N_("Sampling findings past their deadline"),
        overdue_findings(rt, user),
        href,
        True,
    )


# The periodic jobs (``api/services/schedule.py``) by name, and their runs' outcomes.
SCHEDULE_NAMES: Final = {
    "fixity": N_("Fixity check of the copies"),
    "replication": N_("Writing copies a store missed"),
    "retention": N_("Retention scan"),
    "catalog-backup": N_("Catalog backup"),
}
OUTCOMES: Final = {
    "never": N_("never run"),
    "queued": N_("waiting to run"),
    "running": N_("running now"),
    "done": N_("succeeded"),
    "dead": N_("failed"),
}


@dataclass(frozen=True)
class ScheduleRow:
    """One periodic job as the dashboard's card shows it."""

    id: str
    name: str  # a message
    every: str  # a message with %(n)s
    n: int
    last_run: str | None
    outcome: str  # a message
    is_problem: bool
    next_run: str


def schedule_rows(found: Sequence[ScheduleState]) -> tuple[ScheduleRow, ...]:
    rows = []
    for s in found:
        minutes = int(s.interval.total_seconds() // 60)
        if minutes % 1440 == 0:
            every, n = N_("every %(n)s days"), minutes // 1440
        elif minutes % 60 == 0:
            every, n = N_("every %(n)s hours"), minutes // 60
        else:
            every, n = N_("every %(n)s minutes"), minutes
        outcome = OUTCOMES.get(s.outcome, s.outcome) if s.runnable else N_("not installed")
        rows.append(
            ScheduleRow(
                id=s.name,
                name=SCHEDULE_NAMES.get(s.name, s.name),
                every=every,
                n=n,
                last_run=s.last_run_at.strftime("%Y-%m-%d %H:%M") if s.last_run_at else None,
                outcome=outcome,
                is_problem=s.outcome == "dead",
                next_run=s.next_run_at.strftime("%Y-%m-%d %H:%M"),
            )
        )
    return tuple(rows)


@router.get("/", response_class=HTMLResponse)
def dashboard_page(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    stats = dashboard(rt, user)
    # Break-glass paperwork past its day: every grant's for those who see them all, else one's own.
    overdue = Tile(
        "tile-breakglass-overdue",
        N_("Break-glass paperwork overdue"),
        len(breakglass.overdue(rt, user)),
        "/breakglass",
        True,
    )
    by_type = horizontal_bars(
        [(name, n, _records_link(user, type=name)) for name, n in stats.by_type]
    )
    by_status = horizontal_bars(
        [
            (label("status", s), n, _records_link(user, status=s.value) if n else None)
            for s, n in stats.by_status.items()
        ],
        translate=True,
    )
    return render(
        request,
        "dashboard.html",
        {
            "stats": stats,
            "tiles": (
                *tiles(stats, user, review_tile(rt, user)),
                findings_tile(rt, user),
                overdue,
            ),
            "by_type": by_type,
            "by_status": by_status,
            "heat": heat_map(stats, user),
            "schedule": (
                schedule_rows(schedule_states(rt)) if is_allowed(user.role, Action.job_read) else ()
            ),
            "days": day_bars(stats),
            "indicators": office_indicators(rt, user, sampling=sampling_by_quarter(rt, user)),
            "chart_width": CHART_WIDTH,
            "label_width": LABEL_WIDTH,
        },
        user=user,
    )
