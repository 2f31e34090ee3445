"""``dangan quality backfill``: pages read before the quality gate existed get their findings,
the same ones intake would have given them, without reading the page again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from api.services import Runtime
from api.services.quality_backfill import backfill_quality
from catalog import get_record, list_events, list_pages, pages_never_measured
from tests.integration.api_world import world


def _findings(rt: Runtime, code: str) -> dict[int, list[tuple[str, str, float | None, str | None]]]:
    with rt.db.read() as session:
        record = get_record(session, code)
        return {
            p.number: [(c.name, c.verdict.value, c.value, c.reading) for c in p.checks]
            for p in list_pages(session, record.id)
        }


def test_backfill_measures_exactly_what_intake_measured(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        at_intake = _findings(w.rt, w.internal)
        assert at_intake[1]  # intake measured the page
        with w.rt.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM page_checks"))
        with w.rt.db.read() as session:
            todo = dict(pages_never_measured(session, limit=10))
        assert todo == {w.internal: [1], w.contract: [1]}

        report = backfill_quality(w.rt, actor="operator")
        assert (report.records, report.pages, report.failed) == (2, 2, [])
        assert _findings(w.rt, w.internal) == at_intake
        with w.rt.db.read() as session:
            assert pages_never_measured(session, limit=10) == []
            (event,) = list_events(session, action="quality.backfill")
        assert event.detail == {"records": 2, "pages": 2, "failed": 0}
        # Nothing left to do: a second run measures nothing.
        assert backfill_quality(w.rt, actor="operator").pages == 0
