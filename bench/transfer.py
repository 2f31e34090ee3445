"""Transfer packages on the whole corpus: ingest → OCR → export → ``bagit.py`` → import → compare
→ four-property check (issue 10; docs/transfer.md).

In a private temporary directory (wiped at the end) it builds a fresh source archive (SQLite,
two local ``fs`` stores) with ``dangan init``, ingests every file of the corpus's
``manifest.jsonl`` with its metadata (``dangan ingest --manifest``, archive codes kept as legacy
codes) and runs ``dangan worker --once`` until every record is ``archived``. A director then
exports everything (``dangan export --all``); the real ``bagit.py --validate`` must call the
bag valid; a director imports it into a second fresh archive (``dangan import``). Every record
is then compared between the two archives and the bag: the original and the access copy (the
decrypted bytes, through the same ``open_original`` that ``dangan get`` streams; the original
also against the corpus file), the metadata (catalog fields, retention, dates, pages; the
source's also against the manifest) and each page's OCR text. Last, ``dangan check --batch``
runs deep and ``--quick`` on both archives.

Every step a user runs is a subprocess of the real ``dangan`` command; only the comparison
reads the catalogs and vaults in-process (one ``dangan get`` costs ~2.5 s of start-up, and
there are 40 records × 3 objects × 2 archives). Timings of the commands include that
start-up; it is measured alone as ``cli_start_s``. Nothing of a record's text or a student's
name is printed: a mismatch names the archive code and the field.

Usage (from the repository root; OCR is slow, be nice to others on the machine)::

    nice .venv/bin/python bench/transfer.py [--corpus DIR] [--processes N]

The corpus is ``--corpus``, else ``$DANGAN_CORPUS``, else ``../shared/corpus/dev``. The last
line printed is one JSON object of the figures; the exit status is 1 when a record was not
archived, the bag was invalid, or any mismatch was found.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import git_commit  # noqa: E402

from api.services import Runtime  # noqa: E402
from api.services.pipeline import read_ocr_text  # noqa: E402
from api.services.reading import open_original  # noqa: E402
from catalog import (  # noqa: E402
    ObjectRole,
    RecordStatus,
    Stage,
    get_business_type,
    get_record,
    job_counts,
    list_pages,
    record_progress,
    records_in_stage,
)
from dangan.config import load_settings  # noqa: E402

BIN = Path(sys.executable).parent
DANGAN = str(BIN / "dangan")
BAGIT_PY = str(BIN / "bagit.py")
PASSWORD = "bench-password-0123"  # noqa: S105 - a throw-away archive
DIRECTOR = "bench-director"
MB = 1_000_000

#: What ``dangan ingest --manifest`` takes of the corpus manifest (it refuses other keys).
MANIFEST_KEYS = (
    "business_type",
    "year",
    "title",
    "student_no",
    "student_name",
    "security_class",
    "paper_location",
    "archive_code",
)
#: The catalog's fields a transfer must carry unchanged.
RECORD_FIELDS = (
    "archive_code",
    "year",
    "business_type",
    "serial",
    "title",
    "student_no",
    "student_name",
    "student_class",
    "security_class",
    "paper_location",
    "status",
    "content_type",
    "size",
    "plaintext_sha256",
    "page_count",
    "upload_name",
    "created_at",
)
PAGE_FIELDS = (
    "number",
    "state",
    "width",
    "height",
    "rotation",
    "skew",
    "confidence",
    "engine",
    "needs_review",
)


class StepError(Exception):
    """A step of the bench did not do what it must; the message says which."""


def _child_env() -> dict[str, str]:
    """The caller's environment without DANGAN_* settings: each archive is the embedded
    default of its own ``--data-dir``, whatever the shell has configured."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}


def dangan(data_dir: Path | None, *args: str, ok: Iterable[int] = (0,)) -> tuple[str, float]:
    """Run the real ``dangan`` command; its standard output and the wall seconds it took.

    :raises StepError: its exit status is not one of ``ok`` (its stderr's tail is shown: dangan's
        messages name no record content).
    """
    argv = [DANGAN, *(("--data-dir", str(data_dir)) if data_dir else ()), *args]
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own command, argument list
        argv, capture_output=True, text=True, env=_child_env(), check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode not in tuple(ok):
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise StepError(f"dangan {args[0]} exited {done.returncode}:\n{tail}")
    return done.stdout, seconds


def _new_archive(data_dir: Path, password_file: Path) -> None:
    dangan(data_dir, "init", "--admin", "bench-admin", "--password-file", str(password_file))
    dangan(
        data_dir,
        "user",
        "add",
        DIRECTOR,
        "--role",
        "director",
        "--password-file",
        str(password_file),
        "--as",
        "bench-admin",
    )


def _runtime(data_dir: Path) -> Runtime:
    return Runtime(load_settings(None, data_dir=data_dir))


def _write_manifest(corpus: Path, docs: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            line = {"file": str(corpus / d["file"])} | {k: d[k] for k in MANIFEST_KEYS if k in d}
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")


def _archived(data_dir: Path, total: int) -> tuple[int, dict[str, int]]:
    rt = _runtime(data_dir)
    try:
        with rt.db.read() as s:
            done = len(records_in_stage(s, [Stage.done], limit=total + 1))
            counts = {state.value: n for state, n in job_counts(s).items()}
    finally:
        rt.close()
    return done, counts


def _run_workers(data_dir: Path, processes: int, total: int) -> tuple[float, int]:
    """``dangan worker --once`` until every record's pipeline is done (or nothing is left to
    run); the seconds it took and how many records are done."""
    seconds = 0.0
    while True:
        _, took = dangan(data_dir, "worker", "--once", "--processes", str(processes))
        seconds += took
        done, counts = _archived(data_dir, total)
        if done >= total:
            return seconds, done
        if not counts.get("queued") and not counts.get("running"):
            print(f"pipeline stalled: {done}/{total} done; jobs {counts}", file=sys.stderr)
            return seconds, done
        time.sleep(1.0)  # a job waits out its retry backoff


def _sha256(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for piece in chunks:
        h.update(piece)
    return h.hexdigest()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while piece := fh.read(1 << 20):
            yield piece


def _object_sha256(rt: Runtime, code: str, role: ObjectRole) -> str:
    return _sha256(open_original(rt, code, actor="bench", role=role).chunks)


def _page_texts(rt: Runtime, record_id: int) -> list[str | None]:
    return [p.text if p else None for p in read_ocr_text(rt, record_id, actor="bench")]


def _record_facts(rt: Runtime, code: str) -> dict[str, Any]:
    with rt.db.read() as s:
        record = get_record(s, code)
        progress = record_progress(s, record.id)
        pages = list_pages(s, record.id)
        retention = get_business_type(s, record.business_type).retention
    facts: dict[str, Any] = {f: getattr(record, f) for f in RECORD_FIELDS}
    facts["retention"] = retention
    facts["stage"] = progress.stage
    facts["processed_at"] = progress.processed_at
    facts["pages"] = [tuple(getattr(p, f) for f in PAGE_FIELDS) for p in pages]
    facts["_id"] = record.id
    return facts


def _compare(
    src: Runtime, dst: Runtime, bag: Path, corpus: Path, docs: dict[str, dict[str, Any]]
) -> tuple[Counter[str], int]:
    """Count mismatches by kind (``bytes``, ``metadata``, ``text``) over every record; print
    each as its archive code and what differs, never the values. Also the source's pages."""
    bad: Counter[str] = Counter({"bytes": 0, "metadata": 0, "text": 0})
    pages = 0

    def mismatch(kind: str, code: str, what: str) -> None:
        bad[kind] += 1
        print(f"MISMATCH {kind:<8} {code}: {what}")

    for code, doc in docs.items():
        was, now = _record_facts(src, code), _record_facts(dst, code)
        pages += was["page_count"]
        record_dir = bag / "data" / "records" / code
        meta = json.loads((record_dir / "metadata.json").read_text(encoding="utf-8"))

        # bytes: the corpus file = the source's original = the bag's = the new archive's
        original = _object_sha256(src, code, ObjectRole.original)
        for what, digest in (
            ("original vs corpus file", _sha256(_file_chunks(corpus / doc["file"]))),
            ("original in the bag", _sha256(_file_chunks(record_dir / meta["original"]["file"]))),
            ("original imported", _object_sha256(dst, code, ObjectRole.original)),
        ):
            if digest != original:
                mismatch("bytes", code, what)
        access = _object_sha256(src, code, ObjectRole.access_copy)
        for what, digest in (
            ("access copy in the bag", _sha256(_file_chunks(record_dir / "access.pdf"))),
            ("access copy imported", _object_sha256(dst, code, ObjectRole.access_copy)),
        ):
            if digest != access:
                mismatch("bytes", code, what)

        # metadata: the manifest = the source's catalog = the new archive's catalog
        for key in MANIFEST_KEYS:
            if key in doc and str(doc[key]) != str(was[key]):
                mismatch("metadata", code, f"{key} vs manifest")
        if was["status"] is not RecordStatus.archived:
            mismatch("metadata", code, f"source status {was['status'].value}")
        for key in was:
            if key != "_id" and was[key] != now[key]:
                mismatch("metadata", code, f"{key} imported")

        # text, page by page: the source's = the bag's files = the new archive's
        texts = _page_texts(src, was["_id"])
        imported = _page_texts(dst, now["_id"])
        if len(texts) != was["page_count"] or not any(texts):
            mismatch("text", code, f"{len(texts)} texts for {was['page_count']} pages")
        if len(imported) != len(texts):
            mismatch("text", code, f"{len(imported)} pages imported of {len(texts)}")
        by_number = {p["number"]: p.get("ocr_text") for p in meta["pages"]}
        for number, text in enumerate(texts, start=1):
            name = by_number.get(number)
            in_bag = (record_dir / name).read_text(encoding="utf-8") if name else None
            if in_bag != text:
                mismatch("text", code, f"page {number} in the bag")
            if number <= len(imported) and imported[number - 1] != text:
                mismatch("text", code, f"page {number} imported")
    return bad, pages


def _check(data_dir: Path, *, quick: bool) -> tuple[dict[str, Any], float]:
    args = ["check", "--batch", "--format", "json", *(("--quick",) if quick else ())]
    out, seconds = dangan(data_dir, *args, ok=(0, 1))  # 1: the check found problems
    return json.loads(out), seconds


def _problems(report: dict[str, Any]) -> Counter[str]:
    """Fail and warn items, by rule and name (the report's details carry no record text)."""
    found: Counter[str] = Counter()
    for item in report["archive"]:
        if item["outcome"] in ("fail", "warn"):
            found[f"archive {item['outcome']} {item['rule']} {item['name']}"] += 1
    for record in report["records"]:
        for item in record["items"]:
            if item["outcome"] in ("fail", "warn"):
                found[f"record {item['outcome']} {item['rule']} {item['name']}"] += 1
    return found


def run(work: Path, corpus: Path, processes: int) -> dict[str, Any]:
    docs = [
        json.loads(line)
        for line in (corpus / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    password = work / "password"
    password.write_text(PASSWORD + "\n", encoding="utf-8")
    src_dir, dst_dir, bag = work / "source", work / "target", work / "bag"
    f: dict[str, Any] = {"records": len(docs)}

    _, f["cli_start_s"] = dangan(None, "--version")
    _new_archive(src_dir, password)
    manifest = work / "manifest.jsonl"
    _write_manifest(corpus, docs, manifest)
    out, ingest_s = dangan(src_dir, "ingest", "--manifest", str(manifest), "--as", DIRECTOR)
    codes = out.split()
    if sorted(codes) != sorted(d["archive_code"] for d in docs):
        raise StepError("ingest did not print the manifest's archive codes")
    worker_s, archived = _run_workers(src_dir, processes, len(docs))
    f |= {"ingest_s": ingest_s, "ocr_s": worker_s, "ingest_ocr_s": ingest_s + worker_s}
    f["archived"] = archived

    out, f["export_s"] = dangan(
        src_dir, "export", "--all", "--out", str(bag), "--json", "--as", DIRECTOR
    )
    exported = json.loads(out)
    payload_bytes, payload_files = (int(x) for x in exported["payload_oxum"].split("."))
    f |= {
        "exported": len(exported["records"]),
        "export_skipped": len(exported["skipped"]),
        "export_check_outcome": exported["check_outcome"],
        "bag_mb": payload_bytes / MB,
        "bag_files": payload_files,
        "export_mb_s": payload_bytes / MB / f["export_s"],
    }

    started = time.perf_counter()
    valid = subprocess.run(  # noqa: S603 - the venv's bagit.py
        [sys.executable, BAGIT_PY, "--validate", str(bag)],
        capture_output=True,
        text=True,
        check=False,
    )
    f["validate_s"] = time.perf_counter() - started
    f["bag_valid"] = valid.returncode == 0 and "is valid" in valid.stderr
    if not f["bag_valid"]:
        print(valid.stderr[-2000:], file=sys.stderr)

    _new_archive(dst_dir, password)
    out, f["import_s"] = dangan(dst_dir, "import", str(bag), "--json", "--as", DIRECTOR)
    imported = json.loads(out)
    f["imported"] = len(imported["records"])
    f["import_mb_s"] = payload_bytes / MB / f["import_s"]

    src, dst = _runtime(src_dir), _runtime(dst_dir)
    try:
        started = time.perf_counter()
        by_code = {d["archive_code"]: d for d in docs}
        bad, f["pages"] = _compare(src, dst, bag, corpus, by_code)
        f["compare_s"] = time.perf_counter() - started
    finally:
        src.close()
        dst.close()
    f["mismatches"] = dict(bad)
    f["records_compared"] = len(docs)

    checks: dict[str, Any] = {}
    for name, data_dir in (("source", src_dir), ("target", dst_dir)):
        for depth in ("deep", "quick"):
            report, seconds = _check(data_dir, quick=depth == "quick")
            n = report["records_checked"]
            checks[f"{name}_{depth}"] = {
                "outcome": report["outcome"],
                "records": n,
                "record_outcomes": report["record_outcomes"],
                "archive_items": dict(Counter(i["outcome"] for i in report["archive"])),
                "seconds": seconds,
                "s_per_record": seconds / n if n else None,
                "problems": dict(_problems(report)),
            }
    f["check"] = checks
    for name, data_dir in (("source", src_dir), ("target", dst_dir)):
        _, f[f"audit_verify_{name}_s"] = dangan(data_dir, "audit", "verify")
    return f


def _report(f: dict[str, Any], corpus: Path, processes: int) -> bool:
    bad = f["mismatches"]
    print(f"corpus {corpus}: {f['records']} records, {f['pages']} pages")
    print(f"{'step':<34}{'seconds':>10}  notes")
    rows = (
        ("dangan start-up (--version)", f["cli_start_s"], ""),
        ("ingest (dangan ingest --manifest)", f["ingest_s"], ""),
        ("OCR (dangan worker --once)", f["ocr_s"], f"{f['archived']} archived"),
        ("ingest + OCR", f["ingest_ocr_s"], f"{f['pages'] / f['ingest_ocr_s'] * 60:.1f} pages/min"),
        (
            "export --all (director)",
            f["export_s"],
            f"{f['exported']} records, {f['bag_files']} files, {f['bag_mb']:.1f} MB, "
            f"{f['export_mb_s']:.2f} MB/s; its check: {f['export_check_outcome']}",
        ),
        ("bagit.py --validate", f["validate_s"], "valid" if f["bag_valid"] else "INVALID"),
        (
            "import (director, fresh archive)",
            f["import_s"],
            f"{f['imported']} records, {f['import_mb_s']:.2f} MB/s",
        ),
        ("compare (in-process)", f["compare_s"], f"{f['records_compared']} records"),
        ("audit verify, source", f["audit_verify_source_s"], "chain ok"),
        ("audit verify, target", f["audit_verify_target_s"], "chain ok"),
    )
    for label, seconds, note in rows:
        print(f"{label:<34}{seconds:>10.1f}  {note}")
    print(
        f"mismatches: bytes {bad['bytes']}, metadata {bad['metadata']}, text {bad['text']} "
        f"(must all be 0)"
    )
    print(
        f"{'dangan check --batch':<22}{'outcome':>8}{'records':>8}{'s/record':>10}  pass/warn/fail"
    )
    for key, c in f["check"].items():
        o = c["record_outcomes"]
        print(
            f"{key:<22}{c['outcome']:>8}{c['records']:>8}{c['s_per_record']:>10.2f}  "
            f"{o.get('pass', 0)}/{o.get('warn', 0)}/{o.get('fail', 0)}; archive items "
            f"{c['archive_items']}"
        )
        for problem, n in sorted(c["problems"].items()):
            print(f"    {n:>3} × {problem}")
    ok = (
        f["archived"] == f["records"]
        and f["exported"] == f["records"]
        and f["imported"] == f["records"]
        and f["bag_valid"]
        and not any(bad.values())
    )
    rounded: dict[str, Any] = {k: round(v, 3) if isinstance(v, float) else v for k, v in f.items()}
    for c in rounded["check"].values():
        c["seconds"] = round(c["seconds"], 2)
        c["s_per_record"] = round(c["s_per_record"], 3) if c["s_per_record"] else None
    summary = {
        "bench": "transfer",
        "ok": ok,
        **rounded,
        "processes": processes,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "commit": git_commit(),
    }
    print(json.dumps(summary, ensure_ascii=False))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_corpus = os.environ.get("DANGAN_CORPUS") or ROOT.parent / "shared/corpus/dev"
    parser.add_argument("--corpus", type=Path, default=Path(default_corpus))
    parser.add_argument("--processes", type=int, default=0, help="workers; 0 = one per core")
    args = parser.parse_args()
    corpus: Path = args.corpus.resolve()
    # The in-process comparison opens the same embedded archives the commands made.
    for name in [n for n in os.environ if n.startswith("DANGAN_")]:
        del os.environ[name]
    with tempfile.TemporaryDirectory(prefix="dangan-bench-transfer-") as tmp:
        try:
            figures = run(Path(tmp), corpus, args.processes)
        except StepError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
    return 0 if _report(figures, corpus, args.processes) else 1


if __name__ == "__main__":
    sys.exit(main())
