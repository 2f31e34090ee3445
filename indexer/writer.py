"""Writing the index: upserts, deletes and rebuilds, safe across processes.

On disk the index is a directory of generations, each a complete Whoosh index::

    index_dir/
        CURRENT          the name of the generation readers use, replaced atomically
        gen-000001/      a Whoosh index
        gen-000002/      ...

``add`` and ``delete`` write to the current generation under Whoosh's write lock (waiting
up to a timeout, then :class:`~dangan.errors.StoreUnavailableError`, so the job that asked
is retried). ``rebuild`` holds that same lock for its whole run, so that no upsert can land in
a generation about to be retired, builds the next generation beside it, and swaps
``CURRENT``; a rebuild writes the records' text fields as bulk postings
(:mod:`indexer.bulk`) beside the Whoosh index, not through Whoosh. Readers keep answering
from the old generation until the swap. The generation
before the current one is kept for readers still holding it open; older ones are removed.

Never logs document content; log lines carry counts and timings only.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from whoosh import index as windex
from whoosh.codec.whoosh3 import W3Codec, W3FieldWriter

from dangan.errors import InvalidInputError, StoreUnavailableError
from indexer.bulk import BulkBuilder
from indexer.model import IndexDoc
from indexer.schema import build_schema

__all__ = [
    "current_generation",
    "delete_docs",
    "doc_fields",
    "rebuild_index",
    "text_fields",
    "upsert_docs",
]

log = logging.getLogger(__name__)

_CURRENT = "CURRENT"
_GEN_PREFIX = "gen-"
_OLD_FORMAT = "search index is in an older format; rebuild it (dangan index rebuild)"
#: How often a waiting writer looks at the lock again.
_POLL_S = 0.05


def _gen_name(number: int) -> str:
    return f"{_GEN_PREFIX}{number:06d}"


def _generations(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(f"{_GEN_PREFIX}*") if p.is_dir())


def _write_current(root: Path, name: str) -> None:
    """Point ``CURRENT`` at generation ``name`` atomically (temp file, fsync, rename)."""
    tmp = root / f"{_CURRENT}.{os.getpid()}.tmp"
    with tmp.open("w", encoding="ascii") as fh:
        fh.write(name)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(root / _CURRENT)
    dir_fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _init_lock(root: Path) -> Iterator[None]:
    """Serialise creating the first generation between processes."""
    with (root / ".init.lock").open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def current_generation(root: Path) -> Path:
    """The directory of the generation readers should use, creating an empty index if none.

    :param root: the index directory.
    :raises StoreUnavailableError: the directory cannot be created or read.
    """
    current = root / _CURRENT
    try:
        return root / current.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StoreUnavailableError("search index unreadable") from exc
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _init_lock(root):
            if not current.exists():
                gens = _generations(root)
                number = int(gens[-1].name[len(_GEN_PREFIX) :]) + 1 if gens else 1
                gen = root / _gen_name(number)
                gen.mkdir()
                windex.create_in(str(gen), build_schema())
                _write_current(root, gen.name)
            return root / current.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise StoreUnavailableError("search index cannot be created") from exc


def doc_fields(doc: IndexDoc, *, bulk: bool = False) -> dict[str, Any]:
    """The Whoosh field values of one record; absent values are left out, not indexed empty.

    :param doc: the record.
    :param bulk: leave the text fields out: the caller puts them in the bulk postings.
    """
    fields: dict[str, Any] = {
        "record_id": str(doc.record_id),
        "rid": doc.record_id,
        "bulk": int(bulk),
        "archive_code": doc.archive_code,
        "business_type": doc.business_type,
        "year": doc.year,
        "security_class": doc.security_class,
    }
    if doc.student_name:
        fields["name_key"] = doc.student_name
    if not bulk:
        fields.update(text_fields(doc))
    return fields


def text_fields(doc: IndexDoc) -> dict[str, str]:
    """The bigram text fields of one record (:data:`indexer.schema.TEXT_FIELDS`).

    :param doc: the record.
    """
    fields = {
        "code_text": " ".join((doc.archive_code, *doc.former_codes)),
        "title": " ".join((doc.title, *doc.tags)).strip(),
        "body": "\n".join(doc.pages),
    }
    student = " ".join(
        part for part in (doc.student_name, doc.student_no, doc.student_class) if part
    )
    if student:
        fields["student"] = student
    if doc.paper_location:
        fields["location"] = doc.paper_location
    return fields


class _BulkFieldWriter(W3FieldWriter):  # type: ignore[misc]  # whoosh is untyped
    """Whoosh's field writer without per-posting field-length lookups.

    Those lengths only feed block-quality skipping in Whoosh's own scorer, which the search
    does not use (:mod:`indexer.engine` scores with numpy); looking them up cost a fifth of
    a rebuild.
    """

    def add_postings(self, schema: Any, lengths: Any, items: Any) -> None:
        super().add_postings(schema, None, items)


class _RebuildCodec(W3Codec):  # type: ignore[misc]  # whoosh is untyped
    """The default codec, uncompressed, with :class:`_BulkFieldWriter`; same on-disk format."""

    def __init__(self) -> None:
        super().__init__(compression=0)

    def field_writer(self, storage: Any, segment: Any) -> Any:
        return _BulkFieldWriter(self, storage, segment)


def _acquire(lock: Any, deadline: float) -> None:
    while not lock.acquire(blocking=False):
        if time.monotonic() >= deadline:
            raise StoreUnavailableError("search index is busy; try again later")
        time.sleep(_POLL_S)


@contextlib.contextmanager
def _current_writer(root: Path, timeout: float) -> Iterator[Any]:
    """A Whoosh writer on the current generation, committed on success, cancelled on error.

    Waits for the write lock up to ``timeout`` seconds. If a rebuild swapped generations
    while this waited, the lock it got is on a retired generation: it lets go and tries the
    new one.
    """
    deadline = time.monotonic() + timeout
    while True:
        gen = current_generation(root)
        try:
            ix = windex.open_dir(str(gen))
            writer = ix.writer(timeout=max(0.0, deadline - time.monotonic()), delay=_POLL_S)
        except windex.LockError as exc:
            raise StoreUnavailableError("search index is busy; try again later") from exc
        except (OSError, windex.IndexError) as exc:
            raise StoreUnavailableError("search index unreadable") from exc
        if current_generation(root) == gen:
            break
        writer.cancel()
    if "rid" not in writer.schema:
        writer.cancel()
        raise StoreUnavailableError(_OLD_FORMAT)
    try:
        yield writer
    except BaseException:
        writer.cancel()
        raise
    writer.commit()


def upsert_docs(root: Path, docs: Iterable[IndexDoc], *, timeout: float) -> int:
    """Add or replace records (by ``record_id``) in one writer; the last of duplicates wins.

    :param root: the index directory.
    :param docs: the records.
    :param timeout: seconds to wait for another writer.
    :raises StoreUnavailableError: the lock was not free in time, or the index is unreadable.
    """
    latest = {doc.record_id: doc for doc in docs}
    if not latest:
        return 0
    started = time.monotonic()
    with _current_writer(root, timeout) as writer:
        for doc in latest.values():
            writer.update_document(**doc_fields(doc))
    log.info(
        "indexed records",
        extra={
            "event": "index.upsert",
            "count": len(latest),
            "duration_ms": round((time.monotonic() - started) * 1000),
        },
    )
    return len(latest)


def delete_docs(root: Path, record_ids: Iterable[int], *, timeout: float) -> int:
    """Remove records by id; returns how many index documents went.

    :param root: the index directory.
    :param record_ids: the records' ids; unknown ids are ignored.
    :param timeout: seconds to wait for another writer.
    :raises StoreUnavailableError: the lock was not free in time, or the index is unreadable.
    """
    ids = sorted(set(record_ids))
    if not ids:
        return 0
    with _current_writer(root, timeout) as writer:
        deleted = sum(int(writer.delete_by_term("record_id", str(rid))) for rid in ids)
    log.info("removed records from the index", extra={"event": "index.delete", "count": deleted})
    return deleted


def rebuild_index(
    root: Path, docs: Iterable[IndexDoc], *, timeout: float, procs: int = 1, limitmb: int = 256
) -> int:
    """Build a new generation from ``docs`` and swap it in; returns how many were indexed.

    :param root: the index directory.
    :param docs: every record, each ``record_id`` once; streamed, not held in memory.
    :param timeout: seconds to wait for a writer already at work.
    :param procs: Whoosh writer processes; more than one splits the build across cores.
    :param limitmb: memory per writer process for sorting postings before spilling to disk.
    :raises InvalidInputError: a ``record_id`` came twice (the old index stays current).
    :raises StoreUnavailableError: the lock was not free in time, or the disk failed.
    """
    started = time.monotonic()
    old = current_generation(root)
    try:
        old_lock = windex.open_dir(str(old)).lock("WRITELOCK")
    except (OSError, windex.IndexError) as exc:
        raise StoreUnavailableError("search index unreadable") from exc
    _acquire(old_lock, time.monotonic() + timeout)
    new: Path | None = None
    try:
        if current_generation(root) != old:
            raise StoreUnavailableError("search index was rebuilt meanwhile; try again")
        number = int(_generations(root)[-1].name[len(_GEN_PREFIX) :]) + 1
        new = root / _gen_name(number)
        new.mkdir()
        ix = windex.create_in(str(new), build_schema())
        kwargs: dict[str, Any] = {"limitmb": limitmb, "codec": _RebuildCodec()}
        if procs > 1:
            kwargs.update(procs=procs, multisegment=True)
        writer = ix.writer(**kwargs)
        seen: set[int] = set()
        bodies = BulkBuilder()
        try:
            for doc in docs:
                if doc.record_id in seen:
                    raise InvalidInputError(f"record {doc.record_id} given twice to rebuild")
                seen.add(doc.record_id)
                writer.add_document(**doc_fields(doc, bulk=True))
                bodies.add(doc.record_id, text_fields(doc))
            bodies.write(new)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        _write_current(root, new.name)
    except OSError as exc:
        if new is not None:
            shutil.rmtree(new, ignore_errors=True)
        raise StoreUnavailableError("search index could not be rebuilt") from exc
    except BaseException:
        if new is not None:
            shutil.rmtree(new, ignore_errors=True)
        raise
    finally:
        old_lock.release()
    for stale in _generations(root):
        if stale.name < old.name:
            shutil.rmtree(stale, ignore_errors=True)
    log.info(
        "rebuilt the search index",
        extra={
            "event": "index.rebuild",
            "count": len(seen),
            "duration_ms": round((time.monotonic() - started) * 1000),
        },
    )
    return len(seen)
