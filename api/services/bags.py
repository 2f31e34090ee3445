"""BagIt bags (RFC 8493) with SHA-256 and SM3 manifests: making one, and checking one whole.

The ``bagit`` library writes and checks the bag. Its validator only reads manifests named after
``hashlib.algorithms_guaranteed``, which lacks ``sm3`` (GB/T 32905): ``bagit.make_bag(...,
checksums=["sha256", "sm3"])`` writes ``manifest-sm3.txt`` and ``tagmanifest-sm3.txt`` when this
Python's OpenSSL has SM3, but ``bagit.py --validate`` then skips both silently (it checks
``manifest-sm3.txt`` only as a tag file listed in ``tagmanifest-sha256.txt``). So the bag stays
valid for any BagIt tool, and :func:`check_bag` verifies the SM3 manifests itself: every file
the SHA-256 manifests list is listed in the SM3 ones, and no other, and each digest holds.

What this module must never do: accept a bag it has not hashed whole, or a holey bag
(``fetch.txt``), whose payload would come from elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import bagit

from dangan.errors import (
    CorruptDataError,
    DependencyMissingError,
    InvalidInputError,
    StoreUnavailableError,
)

__all__ = ["ALGORITHMS", "BagFacts", "check_bag", "make_bag"]

log = logging.getLogger(__name__)

SM3: Final = "sm3"
ALGORITHMS: Final = ("sha256", SM3)
_BLOCK: Final = 1024 * 1024


@dataclass(frozen=True)
class BagFacts:
    """What identifies a bag once made or checked."""

    path: Path
    payload_bytes: int
    payload_files: int
    tagmanifest_sha256: str  # the SHA-256 of tagmanifest-sha256.txt: names the whole bag
    info: Mapping[str, str]


def _require_sm3() -> None:
    try:
        hashlib.new(SM3)
    except ValueError:
        raise DependencyMissingError(
            "this Python's OpenSSL has no SM3 (GB/T 32905); transfer packages need it"
        ) from None


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _facts(bag: bagit.Bag) -> BagFacts:
    path = Path(bag.path)
    oxum = str(bag.info.get("Payload-Oxum", "0.0"))
    size, _, count = oxum.partition(".")
    info = {k: v if isinstance(v, str) else "; ".join(v) for k, v in bag.info.items()}
    return BagFacts(
        path=path,
        payload_bytes=int(size) if size.isdigit() else 0,
        payload_files=int(count) if count.isdigit() else 0,
        tagmanifest_sha256=_digest(path / "tagmanifest-sha256.txt", "sha256"),
        info=info,
    )


def make_bag(directory: Path, info: Mapping[str, str]) -> BagFacts:
    """Turn ``directory`` into a bag in place: its files move under ``data/``, and the
    manifests and tag manifests are written in SHA-256 and SM3.

    ``bagit.make_bag`` changes the process's working directory while it runs: call it from
    one thread (the CLI), never from a server's request.

    :param info: the ``bag-info.txt`` fields (``Bagging-Date`` and ``Payload-Oxum`` are added).
    :raises DependencyMissingError: no SM3 in this Python's OpenSSL.
    :raises StoreUnavailableError: the bag could not be written.
    """
    _require_sm3()
    try:
        bag = bagit.make_bag(str(directory), bag_info=dict(info), checksums=list(ALGORITHMS))
    except (OSError, bagit.BagError, RuntimeError) as exc:
        raise StoreUnavailableError(f"the bag could not be written: {exc}") from None
    for name in ("manifest-sm3.txt", "tagmanifest-sm3.txt"):
        if not (directory / name).is_file():  # bagit skips an algorithm hashlib lacks
            raise DependencyMissingError(f"bagit did not write {name}")
    return _facts(bag)


def _manifest(bag_dir: Path, name: str) -> dict[str, str]:
    """A manifest's entries, path → digest, read as bagit reads them (RFC 8493 §2.1.3)."""
    entries: dict[str, str] = {}
    root = bag_dir.resolve()
    with (bag_dir / name).open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) != 2:
                raise CorruptDataError(f"{name}: a line is not 'digest path'")
            digest, raw = parts
            rel = os.path.normpath(raw.lstrip("*")).replace("%0A", "\n").replace("%0D", "\r")
            target = (bag_dir / rel).resolve()
            if os.path.isabs(rel) or not target.is_relative_to(root):
                raise CorruptDataError(f"{name}: the path {rel!r} lies outside the bag")
            if rel in entries:
                raise CorruptDataError(f"{name}: {rel} is listed twice")
            entries[rel] = digest.lower()
    return entries


def _check_sm3(bag_dir: Path) -> None:
    """Verify ``manifest-sm3.txt`` and ``tagmanifest-sm3.txt`` against the SHA-256 ones."""
    for kind in ("manifest", "tagmanifest"):
        sha = _manifest(bag_dir, f"{kind}-sha256.txt")
        name = f"{kind}-{SM3}.txt"
        if not (bag_dir / name).is_file():
            raise CorruptDataError(f"the bag has no {name}")
        sm3 = _manifest(bag_dir, name)
        if set(sha) != set(sm3):
            differ = sorted(set(sha) ^ set(sm3))
            raise CorruptDataError(f"{name} and {kind}-sha256.txt list different files: {differ}")
        for rel, expected in sorted(sm3.items()):
            path = bag_dir / rel
            if not path.is_file():
                raise CorruptDataError(f"{rel} is in {name} but not in the bag")
            if not hmac.compare_digest(_digest(path, SM3), expected):
                raise CorruptDataError(f"{rel}: its SM3 digest differs from {name}")


def check_bag(directory: Path) -> BagFacts:
    """Check a bag whole: structure, completeness, Payload-Oxum and every SHA-256 digest (the
    ``bagit`` library's own ``validate``), then every SM3 digest (this module).

    :raises InvalidInputError: not a bag, or a holey one (``fetch.txt``).
    :raises CorruptDataError: a file missing, unexpected, or with a digest that differs.
    :raises DependencyMissingError: no SM3 in this Python's OpenSSL.
    """
    _require_sm3()
    if not directory.is_dir():
        raise InvalidInputError(f"{directory} is not a directory")
    try:
        bag = bagit.Bag(str(directory))
    except bagit.BagError as exc:
        raise InvalidInputError(f"{directory} is not a BagIt bag: {exc}") from None
    if (directory / "fetch.txt").exists():
        raise InvalidInputError("the bag lists files to fetch (fetch.txt): only whole bags")
    if not (directory / "manifest-sha256.txt").is_file():
        raise CorruptDataError("the bag has no manifest-sha256.txt")
    try:
        bag.validate(processes=1)
    except bagit.BagValidationError as exc:
        raise CorruptDataError(f"the bag does not validate: {exc}") from None
    except bagit.BagError as exc:
        raise InvalidInputError(f"the bag cannot be read: {exc}") from None
    _check_sm3(directory)
    return _facts(bag)
