"""Searches and uploads at once through the API, and the server's memory meanwhile (issue 5).

Starts ``dangan serve`` on the embedded default (its job worker in one process), seeds it
with scans of the development corpus (``../shared/corpus/dev``, or ``DANGAN_CORPUS``), then
runs for ``--seconds`` (60): 16 threads searching (``GET /api/v1/search`` with the corpus's
``queries.jsonl``, as a director) and 4 threads uploading corpus scans (``POST
/api/v1/records``, one file each, ``force=true``, as a clerk), each thread with its own
connection, back to back. Any answer that is not 2xx, or no answer, is an error (target: 0).

Prints requests/s and p50/p95/p99 latency per kind, the errors, and the peak RSS of the
server with its worker; the last line is one JSON object of the figures. Run from the
repository root: ``python bench/api_load.py`` (``--seconds 10`` for a short run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import ROOT, RssSampler, Server

CORPUS = Path(os.environ.get("DANGAN_CORPUS", ROOT.parent / "shared" / "corpus" / "dev"))
SEED = 12


@dataclass
class Tally:
    """What one kind of request did: each latency in seconds, and the errors."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if error is not None:
                self.errors.append(error)

    def figures(self, seconds: float) -> dict[str, Any]:
        ms = sorted(x * 1000 for x in self.latencies)
        q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
        return {
            "requests": len(ms),
            "per_s": round(len(ms) / seconds, 1),
            "p50_ms": round(q[49], 1) if q else None,
            "p95_ms": round(q[94], 1) if q else None,
            "p99_ms": round(q[98], 1) if q else None,
            "errors": len(self.errors),
        }


def _scans() -> list[dict[str, Any]]:
    manifest = CORPUS / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"no corpus at {CORPUS}: set DANGAN_CORPUS")
    entries = [json.loads(line) for line in manifest.read_text("utf-8").splitlines() if line]
    # The smaller scans first: an upload's cost is mostly its bytes.
    entries.sort(key=lambda e: (CORPUS / e["file"]).stat().st_size)
    return [e for e in entries if e.get("security_class", "internal") == "internal"]


def _upload(client: httpx.Client, url: str, token: str, entry: dict[str, Any]) -> httpx.Response:
    return client.post(
        f"{url}/api/v1/records",
        headers={"Authorization": f"Bearer {token}"},
        files=[("files", (entry["file"], (CORPUS / entry["file"]).read_bytes()))],
        data={
            "business_type": entry["business_type"],
            "year": str(entry["year"]),
            "title": entry.get("title", ""),
            "force": "true",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--searchers", type=int, default=16)
    parser.add_argument("--uploaders", type=int, default=4)
    args = parser.parse_args()

    scans = _scans()
    queries = [
        json.loads(line)["q"]
        for line in (CORPUS / "queries.jsonl").read_text("utf-8").splitlines()
        if line
    ]
    env = {"DANGAN_WORKER__PROCESSES": "1", "DANGAN_WORKER__POLL_SECONDS": "0.5"}
    with Server(env) as server:
        clerk = server.add_user("clerk1", "clerk")
        director = server.add_user("director1", "director")
        with httpx.Client(timeout=120) as client:
            for entry in scans[:SEED]:
                _upload(client, server.url, clerk, entry).raise_for_status()

        tallies = {"search": Tally(), "upload": Tally()}
        stop = threading.Event()

        def search(n: int) -> None:
            with httpx.Client(timeout=120) as c:
                i = n
                while not stop.is_set():
                    q = queries[i % len(queries)]
                    i += args.searchers
                    t0 = time.monotonic()
                    try:
                        r = c.get(
                            f"{server.url}/api/v1/search",
                            params={"q": q},
                            headers={"Authorization": f"Bearer {director}"},
                        )
                        error = None if r.is_success else f"{r.status_code} {r.text[:200]}"
                    except httpx.HTTPError as exc:
                        error = f"{type(exc).__name__}: {exc}"
                    tallies["search"].add(time.monotonic() - t0, error)

        def upload(n: int) -> None:
            with httpx.Client(timeout=120) as c:
                i = n
                while not stop.is_set():
                    entry = scans[i % len(scans)]
                    i += args.uploaders
                    t0 = time.monotonic()
                    try:
                        r = _upload(c, server.url, clerk, entry)
                        error = None if r.is_success else f"{r.status_code} {r.text[:200]}"
                    except httpx.HTTPError as exc:
                        error = f"{type(exc).__name__}: {exc}"
                    tallies["upload"].add(time.monotonic() - t0, error)

        threads = [threading.Thread(target=search, args=(n,)) for n in range(args.searchers)]
        threads += [threading.Thread(target=upload, args=(n,)) for n in range(args.uploaders)]
        sampler = RssSampler(server.pid)
        before_mib = sampler.start_kib / 1024
        sampler.start()
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        sampler.stop()
        main_peak_mib = sampler.hwm_kib / 1024

    kinds = {kind: tally.figures(elapsed) for kind, tally in tallies.items()}
    errors = [e for tally in tallies.values() for e in tally.errors]
    figures = {
        "bench": "api_load",
        "seconds": round(elapsed, 1),
        "searchers": args.searchers,
        "uploaders": args.uploaders,
        "seeded_records": min(SEED, len(scans)),
        **{f"{kind}_{k}": v for kind, f in kinds.items() for k, v in f.items()},
        "requests_per_s": round(sum(f["requests"] for f in kinds.values()) / elapsed, 1),
        "errors": len(errors),
        "server_rss_before_mib": round(before_mib, 1),
        "server_peak_rss_mib": round(sampler.peak_mib, 1),
        "server_main_peak_rss_mib": round(main_peak_mib, 1),
        "server_processes": sampler.processes,
    }
    print(f"{args.searchers} searchers and {args.uploaders} uploaders for {elapsed:.1f} s")
    for kind, f in kinds.items():
        print(
            f"{kind:7s} {f['requests']:6d} requests, {f['per_s']:7.1f}/s, p50 {f['p50_ms']} ms, "
            f"p95 {f['p95_ms']} ms, p99 {f['p99_ms']} ms, {f['errors']} errors"
        )
    for error in sorted(set(errors))[:5]:
        print(f"  error: {error}")
    print(
        f"server  peak RSS {figures['server_peak_rss_mib']} MiB over "
        f"{sampler.processes} process(es) (the worker's OCR included), from "
        f"{figures['server_rss_before_mib']} MiB; the serving process alone {main_peak_mib:.1f} MiB"
    )
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
