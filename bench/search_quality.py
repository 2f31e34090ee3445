"""Search quality on a scanned corpus, end to end: intake → OCR → index → search.

Ingests every document of the corpus's ``manifest.jsonl`` into a fresh data directory with the
manifest's metadata (its archive codes kept as legacy codes), runs the workers until every
record is ``archived``, then asks each query of ``queries.jsonl`` as a user of its ``as_role``
and prints recall@10, MRR and contract leaks.

A leak is a contract-class record in an auditor's hits, or an auditor's total (or facet count)
that counts one: the same query is asked as a director too, and the auditor's figures must be
the director's less the contract records the director finds.

Usage (from the repository root)::

    .venv/bin/python bench/search_quality.py [--corpus DIR] [--engine rapidocr|tesseract]
        [--workers N] [--keep DIR]

The last line printed is one JSON object; keys ``recall_at_10``, ``mrr``, ``contract_leaks``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.services import Runtime, ingest, initialize  # noqa: E402
from api.services.search import search_records  # noqa: E402
from api.services.worker import run_workers  # noqa: E402
from catalog import (  # noqa: E402
    JobState,
    NewRecord,
    Role,
    SecurityClass,
    Stage,
    create_user,
    get_user,
    job_counts,
    records_in_stage,
)
from dangan.config import load_settings  # noqa: E402

PASSWORD = "bench-password-0123"  # noqa: S105 - a throw-away data directory


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _ingest_corpus(rt: Runtime, corpus: Path, docs: list[dict[str, Any]]) -> dict[str, str]:
    classes: dict[str, str] = {}
    for d in docs:
        new = NewRecord(
            business_type=d["business_type"],
            year=int(d["year"]),
            title=d.get("title") or "",
            student_no=d.get("student_no"),
            student_name=d.get("student_name"),
            security_class=SecurityClass(d["security_class"]),
            paper_location=d.get("paper_location"),
            archive_code=d["archive_code"],
        )
        info = ingest(rt, corpus / d["file"], new, actor="bench")
        classes[info.archive_code] = d["security_class"]
    return classes


def _run_pipeline(rt: Runtime, workers: int, total: int) -> float:
    started = time.perf_counter()
    stop = threading.Event()
    while True:
        run_workers(rt, workers, stop, once=True)
        with rt.db.read() as s:
            done = len(records_in_stage(s, [Stage.done], limit=total + 1))
            counts = job_counts(s)
        if done >= total:
            break
        if counts.get(JobState.queued, 0) == 0 and counts.get(JobState.running, 0) == 0:
            print(f"pipeline stalled: {done}/{total} done; jobs {counts}", file=sys.stderr)
            break
        time.sleep(1.0)
    return time.perf_counter() - started


def _all_codes(rt: Runtime, q: str, filters: dict[str, Any], user: Any) -> tuple[int, list[str]]:
    """Every hit of a query (all pages) and its total, as ``user``."""
    codes: list[str] = []
    page = 1
    while True:
        res = search_records(rt, q, user=user, page=page, page_size=100, snippets=False, **filters)
        codes.extend(h.record.archive_code for h in res.hits)
        if page * 100 >= res.total or not res.hits:
            return res.total, codes
        page += 1


def _filters(f: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "business_type" in f:
        out["business_type"] = f["business_type"]
    if "year" in f:
        out["year"] = str(f["year"])
    if "year_from" in f or "year_to" in f:
        out["year"] = f"{f.get('year_from', 1949)}..{f.get('year_to', 2100)}"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpus/dev")
    parser.add_argument("--engine", choices=["rapidocr", "tesseract"], default=None)
    parser.add_argument("--workers", type=int, default=0, help="0 = one per core")
    parser.add_argument("--keep", type=Path, help="Use (and keep) this data directory.")
    args = parser.parse_args()

    corpus: Path = args.corpus.resolve()
    docs = _load(corpus / "manifest.jsonl")
    queries = _load(corpus / "queries.jsonl")
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="dangan-bench-"))
    overrides: dict[str, Any] = {"data_dir": data_dir}
    if args.engine:
        os.environ["DANGAN_OCR__ENGINE"] = args.engine
    rt = Runtime(load_settings(None, **overrides))
    try:
        initialize(rt, admin="admin", password=PASSWORD)
        with rt.db.write() as s:
            for name, role in (("bench-auditor", Role.auditor), ("bench-director", Role.director)):
                create_user(s, name=name, role=role, password=PASSWORD, actor="bench")
        with rt.db.read() as s:
            users = {
                "auditor": get_user(s, "bench-auditor"),
                "director": get_user(s, "bench-director"),
            }
        t0 = time.perf_counter()
        classes = _ingest_corpus(rt, corpus, docs)
        ingest_s = time.perf_counter() - t0
        pipeline_s = _run_pipeline(rt, args.workers, len(docs))
        with rt.db.read() as s:
            archived = len(records_in_stage(s, [Stage.done], limit=len(docs) + 1))

        recalls: list[float] = []
        reciprocal: list[float] = []
        leaks = 0
        for q in queries:
            user = users[q["as_role"]]
            filters = _filters(q.get("filters") or {})
            res = search_records(rt, q["q"], user=user, page_size=10, **filters)
            top = [h.record.archive_code for h in res.hits]
            expected = q["expected"]
            if expected:
                found = [c for c in expected if c in top]
                recalls.append(len(found) / len(expected))
                ranks = [top.index(c) + 1 for c in found]
                reciprocal.append(1.0 / min(ranks) if ranks else 0.0)
            if q["as_role"] != "director":
                leaked = [c for c in top if classes.get(c) == SecurityClass.contract.value]
                total, _ = _all_codes(rt, q["q"], filters, user)
                d_total, d_codes = _all_codes(rt, q["q"], filters, users["director"])
                hidden = sum(classes.get(c) == SecurityClass.contract.value for c in d_codes)
                facet_sum = sum(f.count for f in res.facets.get("business_type", ()))
                bad_count = total != d_total - hidden or (res.facets and facet_sum != total)
                if leaked or bad_count:
                    leaks += 1
                    print(f"LEAK {q['id']}: hits {leaked}, total {total} vs {d_total}-{hidden}")
            miss = [c for c in expected if c not in top]
            if miss:
                print(f"{q['id']} ({q['kind']}): missed {miss}; top {top[:5]}")
        figures = {
            "recall_at_10": round(sum(recalls) / len(recalls), 4) if recalls else None,
            "mrr": round(sum(reciprocal) / len(reciprocal), 4) if reciprocal else None,
            "contract_leaks": leaks,
            "queries": len(queries),
            "documents": len(docs),
            "archived": archived,
            "engine": rt.settings.ocr.engine,
            "ingest_s": round(ingest_s, 1),
            "pipeline_s": round(pipeline_s, 1),
            "all_archived": archived == len(docs),
        }
        print(json.dumps(figures, ensure_ascii=False))
        return 0 if archived == len(docs) else 1
    finally:
        rt.close()
        if args.keep is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
