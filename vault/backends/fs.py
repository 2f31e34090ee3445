"""The ``fs`` store: a local directory of immutable ciphertext files.

A copy of object ``abcdef…`` lives at ``<root>/ab/cd/abcdef…`` (mode 0600, directories
0700). A write goes to a hidden temporary file beside it, is fsynced, renamed into place and
the directory fsynced, so a crash leaves the old copy or the new one, never half of one.

This module must never create the store's root directory (a missing root is an unmounted
disk, not an empty store) and never leave a temporary file behind after a failed write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from dangan.errors import NotFoundError, StoreUnavailableError
from vault.backends.base import ObjectInfo, ObjectStream, StoredObject, Tally
from vault.ids import check_object_id, is_object_id
from vault.stream import CHUNK
from vault.suites import DigestName

__all__ = ["FsBackend"]

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"  # docs/vault-format.md, "Stores": never an object id
WRITEBACK_WINDOW = 8 << 20
"""Bytes after which a write asks the kernel to start flushing them (see ``_start_writeback``)."""


class FsBackend:
    """A store in the directory ``root``, which must exist."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.name = f"fs:{self.root}"

    def __repr__(self) -> str:
        return f"FsBackend({str(self.root)!r})"

    def path_of(self, object_id: str) -> Path:
        """Where a copy of ``object_id`` lives (``docs/vault-format.md``, "Stores")."""
        check_object_id(object_id)
        return self.root / object_id[0:2] / object_id[2:4] / object_id

    def _unavailable(self, doing: str, exc: OSError) -> StoreUnavailableError:
        return StoreUnavailableError(f"store {self.name}: {doing}: {exc.strerror or exc}")

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise StoreUnavailableError(f"store {self.name}: the directory is missing")

    def put(
        self, object_id: str, chunks: Iterable[bytes], *, algorithm: DigestName = "sha256"
    ) -> StoredObject:
        final = self.path_of(object_id)
        self._require_root()
        try:
            _make_dirs(self.root, final.parent)
            fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=final.parent)
        except OSError as exc:
            raise self._unavailable("cannot create a file", exc) from exc
        tmp = Path(tmp_name)
        tally = Tally(algorithm)
        try:
            try:
                with os.fdopen(fd, "wb") as fh:
                    flushed = 0
                    for chunk in chunks:  # the caller's errors pass through untouched
                        tally.update(chunk)
                        try:
                            fh.write(chunk)
                            if tally.size - flushed >= WRITEBACK_WINDOW:
                                fh.flush()
                                _start_writeback(fh.fileno(), flushed, tally.size - flushed)
                                flushed = tally.size
                        except OSError as exc:
                            raise self._unavailable("cannot write", exc) from exc
                    try:
                        fh.flush()
                        os.fsync(fh.fileno())
                    except OSError as exc:
                        raise self._unavailable("cannot flush", exc) from exc
            except OSError as exc:  # closing flushes what a failed write left buffered
                raise self._unavailable("cannot write", exc) from exc
            try:
                os.replace(tmp, final)
                _fsync_dir(final.parent)
            except OSError as exc:
                raise self._unavailable("cannot rename into place", exc) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return tally.result()

    def open(self, object_id: str) -> ObjectStream:
        path = self.path_of(object_id)
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            self._require_root()
            raise NotFoundError(f"object {object_id} is not in store {self.name}") from None
        except OSError as exc:
            raise self._unavailable(f"cannot open object {object_id}", exc) from exc

        def chunks() -> Iterator[bytes]:
            while True:
                try:
                    data = fh.read(CHUNK)
                except OSError as exc:
                    raise self._unavailable(f"cannot read object {object_id}", exc) from exc
                if not data:
                    return
                yield data
                del data  # before the next read, so the allocator hands the same buffer back

        return ObjectStream(chunks(), fh.close)

    def stat(self, object_id: str) -> ObjectInfo:
        path = self.path_of(object_id)
        try:
            st = path.stat()
        except FileNotFoundError:
            self._require_root()
            raise NotFoundError(f"object {object_id} is not in store {self.name}") from None
        except OSError as exc:
            raise self._unavailable(f"cannot stat object {object_id}", exc) from exc
        return ObjectInfo(object_id, st.st_size)

    def delete(self, object_id: str) -> None:
        path = self.path_of(object_id)
        self._require_root()
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._unavailable(f"cannot delete object {object_id}", exc) from exc
        with contextlib.suppress(OSError):
            _fsync_dir(path.parent)

    def list(self) -> Iterator[str]:
        self._require_root()
        try:
            for first in _subdirs(self.root):
                for second in _subdirs(first):
                    for entry in os.scandir(second):
                        name = entry.name
                        if (
                            entry.is_file(follow_symlinks=False)
                            and name.startswith(first.name + second.name)
                            and is_object_id(name)
                        ):
                            yield name
        except OSError as exc:
            raise self._unavailable("cannot list", exc) from exc


def _subdirs(directory: Path) -> list[Path]:
    return sorted(
        Path(e.path)
        for e in os.scandir(directory)
        if len(e.name) == 2 and e.is_dir(follow_symlinks=False)
    )


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range just written out to the disk, now.

    The final fsync alone would leave the whole file dirty until the end and then wait for
    all of it, with the disk idle while we encrypt and the CPU idle while it flushes.
    Starting writeback as we go overlaps the two (RocksDB's ``bytes_per_sync`` does the
    same). On Linux, ``POSIX_FADV_DONTNEED`` on dirty pages starts their writeback and keeps
    them cached; it is only a hint, and durability still comes from the fsync.
    """
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _make_dirs(root: Path, directory: Path) -> None:
    """Create the shard directories under ``root``, making each new entry durable."""
    missing = []
    here = directory
    while here != root and not here.is_dir():
        missing.append(here)
        here = here.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        _fsync_dir(d.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
