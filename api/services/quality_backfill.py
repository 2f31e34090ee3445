"""Measure the digitization quality (docs/quality.md) of pages read before the quality gate
existed: ``dangan quality backfill``.

Each record's original is decrypted in memory once, every page without findings is measured
as scanned, and judged with the skew and confidence its reading stored; the findings are kept
exactly as the ``ocr.page`` job keeps them (a blocking type's failure flags the record for
review and is audited). Nothing is read again by OCR and no page text is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from api.services.pipeline import judge_page, original_scan
from api.services.runtime import Runtime
from catalog import (
    get_record,
    list_pages,
    pages_never_measured,
    record_event,
    store_page_checks,
)
from dangan.errors import DanganError
from ocr.quality import measure_page

__all__ = ["BackfillReport", "backfill_quality"]


@dataclass
class BackfillReport:
    records: int = 0
    pages: int = 0
    failed: list[str] = field(default_factory=list)  # "code: error code", nothing more


def backfill_quality(rt: Runtime, *, actor: str, limit: int = 1000) -> BackfillReport:
    """Measure up to ``limit`` records' unmeasured pages; audited as ``quality.backfill``."""
    report = BackfillReport()
    with rt.db.read() as session:
        todo = pages_never_measured(session, limit=limit)
    max_pixels = rt.settings.ocr.max_image_pixels
    for code, numbers in todo:
        try:
            with rt.db.read() as session:
                record = get_record(session, code)
                pages = {p.number: p for p in list_pages(session, record.id)}
            data, media_type = original_scan(rt, record, actor=actor)
            measured = []
            for number in numbers:
                page = pages[number]
                scan = measure_page(data, media_type, number - 1, max_pixels=max_pixels)
                checks = judge_page(
                    rt.settings.quality,
                    record.business_type,
                    scan,
                    skew=page.skew,
                    confidence=page.confidence,
                    engine=page.engine,
                )
                measured.append((number, checks))
            del data
            with rt.db.write() as session:
                for number, checks in measured:
                    store_page_checks(
                        session, record.id, number, checks, actor=actor, archive_code=code
                    )
        except DanganError as exc:
            report.failed.append(f"{code}: {exc.code}")
            continue
        report.records += 1
        report.pages += len(numbers)
    with rt.db.write() as session:
        record_event(
            session,
            actor=actor,
            action="quality.backfill",
            target=None,
            outcome="ok" if not report.failed else "error",
            detail={
                "records": report.records,
                "pages": report.pages,
                "failed": len(report.failed),
            },
        )
    return report
