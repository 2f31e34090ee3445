"""Fixity check throughput beside the machine's own ceilings, measured in the same run (issue 6).

Writes a set of objects into two ``fs`` stores through :class:`vault.Vault`, then measures on
the primary's copies:

- keyless verify (``Vault.verify_copy`` without a key: stat, read, SHA-256 of the stored
  bytes; what every run of the fixity cycle does to each copy), in MB/s of stored bytes;
- its ceilings: a plain read of the same files (1 MiB reads, no hashing) and SHA-256 of the
  same amount of bytes already in memory, one core; target: verify ≥ 0.8 × the lower;
- deep verify (``verify_copy`` with the wrapped key: the same read and hash, plus decrypting
  every segment and hashing the plaintext), against AES-256-GCM decrypt of the same bytes
  (1 MiB segments, one core, ``cryptography``'s AESGCM).

Every measurement reads the files warm (a first untimed pass fills the page cache), so the
read ceiling and the verify see the same cache state; give ``--size-mib`` larger than the
RAM to measure the disk instead. Run from the repository root: ``python bench/fixity.py``
(``--quick`` for a small run). The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import git_commit  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from vault import CHUNK, FsBackend, Keyring, Vault, WriteResult, new_object_id  # noqa: E402

MB = 1_000_000
MIB = 1 << 20
BLOCK = os.urandom(CHUNK)


def generated(size: int, seed: int) -> Iterator[bytes]:
    n = 0
    while size > 0:
        take = min(size, CHUNK)
        yield ((seed << 40) + n).to_bytes(8, "big") + BLOCK[8:take]
        size -= take
        n += 1


def best_of(runs: int, fn: Callable[[], Any]) -> float:
    """The shortest of ``runs`` timings, in seconds (the least disturbed)."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=32, help="how many objects")
    parser.add_argument("--size-mib", type=int, default=32, help="plaintext MiB per object")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--dir", type=Path, default=None, help="where the stores go")
    parser.add_argument("--quick", action="store_true", help="8 objects of 8 MiB")
    args = parser.parse_args()
    if args.quick:
        args.objects, args.size_mib = 8, 8

    work = Path(tempfile.mkdtemp(prefix="dangan-bench-fixity-", dir=args.dir))
    try:
        figures = _measure(work, args.objects, args.size_mib * MIB, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _report(figures, args)


def _measure(work: Path, count: int, size: int, runs: int) -> dict[str, float]:
    for name in ("primary", "replica"):
        (work / name).mkdir()
    vault = Vault(FsBackend(work / "primary"), FsBackend(work / "replica"), Keyring.generate())
    written: list[tuple[str, WriteResult]] = []
    for i in range(count):
        oid = new_object_id()
        written.append((oid, vault.write(oid, generated(size, i))))
    stored = sum(r.copies["primary"].size or 0 for _, r in written)
    paths = [p for p in (work / "primary").rglob("*") if p.is_file()]

    def plain_read() -> None:
        for path in paths:
            with path.open("rb") as fh:
                while fh.read(CHUNK):
                    pass

    def sha_only() -> None:
        h = hashlib.sha256()
        for _ in range(stored // CHUNK):
            h.update(BLOCK)

    def keyless() -> None:
        for oid, r in written:
            copy = r.copies["primary"]
            status = vault.verify_copy(
                "primary", oid, size=copy.size or 0, ciphertext_sha256=copy.sha256 or ""
            )
            if not status.ok:
                raise SystemExit(f"a copy failed its check: {status.reason}")

    def deep() -> None:
        for oid, r in written:
            copy = r.copies["primary"]
            status = vault.verify_copy(
                "primary",
                oid,
                size=copy.size or 0,
                ciphertext_sha256=copy.sha256 or "",
                wrapped_key=r.wrapped_key,
                plaintext_sha256=r.plaintext_sha256,
            )
            if not status.ok:
                raise SystemExit(f"a copy failed its check: {status.reason}")

    aead = AESGCM(AESGCM.generate_key(256))
    sealed = aead.encrypt(b"\0" * 12, BLOCK, b"ad")

    def aes_decrypt() -> None:
        for _ in range(stored // (CHUNK + 16)):
            aead.decrypt(b"\0" * 12, sealed, b"ad")

    plain_read()  # warm the page cache: every timing below sees the same state
    mbs = {}
    for name, fn in (
        ("read", plain_read),
        ("sha256", sha_only),
        ("keyless", keyless),
        ("aes_gcm_decrypt", aes_decrypt),
        ("deep", deep),
    ):
        mbs[name] = stored / best_of(runs, fn) / MB
    mbs["stored_mb"] = stored / MB
    return mbs


def _report(f: dict[str, float], args: argparse.Namespace) -> None:
    ceiling = min(f["read"], f["sha256"])
    keyless_ratio = f["keyless"] / ceiling
    deep_ratio = f["deep"] / f["aes_gcm_decrypt"]
    print(f"{args.objects} objects × {args.size_mib} MiB, {f['stored_mb']:.0f} MB stored, warm")
    print(f"{'measure':<34}{'MB/s':>10}")
    for label, key in (
        ("plain read (ceiling)", "read"),
        ("SHA-256, one core (ceiling)", "sha256"),
        ("keyless verify", "keyless"),
        ("AES-256-GCM decrypt (ceiling)", "aes_gcm_decrypt"),
        ("deep verify", "deep"),
    ):
        print(f"{label:<34}{f[key]:>10.0f}")
    print(f"keyless verify / min(read, SHA-256) = {keyless_ratio:.2f} (target ≥ 0.8)")
    print(f"deep verify / AES-GCM decrypt       = {deep_ratio:.2f}")
    commit = git_commit()
    print(
        json.dumps(
            {
                "bench": "fixity",
                "keyless_ratio_to_ceiling": round(keyless_ratio, 3),
                "deep_ratio_to_aes_gcm_decrypt": round(deep_ratio, 3),
                "mb_s": {k: round(v, 1) for k, v in f.items() if k != "stored_mb"},
                "stored_mb": round(f["stored_mb"], 1),
                "sizes": {"objects": args.objects, "size_mib": args.size_mib, "runs": args.runs},
                "machine": {
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "system": platform.platform(),
                },
                "commit": commit,
            }
        )
    )


if __name__ == "__main__":
    main()
