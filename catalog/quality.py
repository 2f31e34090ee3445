"""Digitization quality findings per page (docs/quality.md): stored, read back, and what a
blocking failure does to the record.

The figures are measured by ``ocr.quality`` and judged by the pipeline; this module only keeps
them (one row per check per page, replaced when the page is measured again) and, when the
record's business type blocks, flags the page and its record for review and audits why. It
never deletes a record or a page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from catalog.audit import record_event
from catalog.models import Page, PageCheck, PageState, Record, RecordStatus, Verdict
from dangan.errors import NotFoundError

__all__ = [
    "PageCheckInfo",
    "checks_of_pages",
    "pages_never_measured",
    "quality_issue_counts",
    "store_page_checks",
]


@dataclass(frozen=True)
class PageCheckInfo:
    """One check on one page: its verdict, its measured figure and the rule it was held to.

    :ivar name: ``dpi``, ``size``, ``colour``, ``skew``, ``blank`` or ``confidence``.
    :ivar value: the figure when it is a number (dpi, degrees, ink share, confidence).
    :ivar reading: the figure in words (``grey``, ``A4``, ``blank``).
    :ivar threshold: the rule as people read it (``≥ 200``, ``colour``, ``≤ 3°``).
    """

    name: str
    verdict: Verdict
    value: float | None
    reading: str | None
    threshold: str


def _info(c: PageCheck) -> PageCheckInfo:
    return PageCheckInfo(c.name, Verdict(c.verdict), c.value, c.reading, c.threshold)


def store_page_checks(
    session: Session,
    record_id: int,
    number: int,
    checks: Sequence[PageCheckInfo],
    *,
    actor: str,
    archive_code: str,
) -> None:
    """Keep page ``number``'s findings, replacing any from an earlier measurement.

    A ``fail`` verdict (the business type blocks) flags the page and the record
    ``needs_review`` and audits ``record.quality_blocked`` naming the failed checks and their
    figures; ``warn`` verdicts are only kept.

    :raises NotFoundError: the record has no such page.
    """
    page = session.scalars(
        select(Page).where(Page.record_id == record_id, Page.number == number)
    ).one_or_none()
    if page is None:
        raise NotFoundError(f"no page {number} in this record")
    session.execute(delete(PageCheck).where(PageCheck.page_id == page.id))
    session.add_all(
        PageCheck(
            page_id=page.id,
            name=c.name,
            verdict=c.verdict.value,
            value=c.value,
            reading=c.reading,
            threshold=c.threshold,
        )
        for c in checks
    )
    failed = [c for c in checks if c.verdict is Verdict.fail]
    if not failed:
        return
    page.needs_review = True
    record = session.get(Record, record_id)
    if record is not None:
        record.needs_review = True
    record_event(
        session,
        actor=actor,
        action="record.quality_blocked",
        target=f"record:{archive_code}",
        outcome="error",
        detail={
            "page": number,
            "checks": [
                {"check": c.name, "figure": c.value if c.value is not None else c.reading}
                for c in failed
            ],
        },
    )


def checks_of_pages(session: Session, page_ids: Iterable[int]) -> dict[int, list[PageCheckInfo]]:
    """Each page's findings by page id, in the order they were measured."""
    ids = list(page_ids)
    found: dict[int, list[PageCheckInfo]] = {}
    if not ids:
        return found
    for c in session.scalars(
        select(PageCheck).where(PageCheck.page_id.in_(ids)).order_by(PageCheck.id)
    ):
        found.setdefault(c.page_id, []).append(_info(c))
    return found


def quality_issue_counts(session: Session, record_ids: Iterable[int]) -> dict[int, int]:
    """How many failed checks (``warn`` or ``fail``) each record's pages have; records without
    any are left out."""
    ids = list(record_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Page.record_id, func.count())
        .join(PageCheck, PageCheck.page_id == Page.id)
        .where(
            Page.record_id.in_(ids),
            PageCheck.verdict.in_([Verdict.warn.value, Verdict.fail.value]),
        )
        .group_by(Page.record_id)
    ).all()
    return {int(r): int(n) for r, n in rows}


def pages_never_measured(session: Session, *, limit: int) -> list[tuple[str, list[int]]]:
    """Live records with pages read before the quality gate existed (read, but with no
    findings): each record's archive code and those page numbers, oldest records first.

    :param limit: the most records returned.
    """
    measured = select(PageCheck.page_id)
    rows = session.execute(
        select(Record.archive_code, Page.number)
        .join(Page, Page.record_id == Record.id)
        .where(
            Page.state == PageState.done.value,
            Page.id.not_in(measured),
            Record.status != RecordStatus.disposed.value,
        )
        .order_by(Record.id, Page.number)
    ).all()
    found: dict[str, list[int]] = {}
    for code, number in rows:
        if code not in found and len(found) >= limit:
            break
        found.setdefault(code, []).append(number)
    return list(found.items())
