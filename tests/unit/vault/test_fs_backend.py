"""The fs store on a real directory: layout, atomic writes, and faults made for real."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dangan.errors import CorruptDataError, NotFoundError, StoreUnavailableError
from vault import new_object_id
from vault.backends import FsBackend, read_back


@pytest.fixture
def store(tmp_path: Path) -> FsBackend:
    root = tmp_path / "primary"
    root.mkdir()
    return FsBackend(root)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_open_stat_list_delete(store: FsBackend) -> None:
    oid = new_object_id()
    data = os.urandom(3 * 1024 * 1024 + 5)
    stored = store.put(oid, [data[: 1 << 20], data[1 << 20 :]])
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()

    path = store.root / oid[:2] / oid[2:4] / oid
    assert files_under(store.root) == [path]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with store.open(oid) as stream:
        pieces = list(stream)
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= 1 << 20
    assert store.stat(oid).size == len(data)
    assert read_back(store, oid) == stored
    assert list(store.list()) == [oid]

    store.delete(oid)
    store.delete(oid)  # a second delete is harmless
    assert list(store.list()) == []
    with pytest.raises(NotFoundError):
        store.open(oid)
    with pytest.raises(NotFoundError):
        store.stat(oid)


def test_a_second_put_replaces_the_copy(store: FsBackend) -> None:
    oid = new_object_id()
    store.put(oid, [b"old"])
    assert store.put(oid, [b"new!"]).size == 4
    assert read_back(store, oid).sha256 == hashlib.sha256(b"new!").hexdigest()
    assert len(files_under(store.root)) == 1


def test_an_empty_object_round_trips(store: FsBackend) -> None:
    oid = new_object_id()
    assert store.put(oid, []).size == 0
    with store.open(oid) as stream:
        assert list(stream) == []


def test_a_failing_source_leaves_no_file_and_keeps_the_old_copy(store: FsBackend) -> None:
    oid = new_object_id()
    store.put(oid, [b"the good copy"])

    def broken() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise CorruptDataError("the source went bad")

    with pytest.raises(CorruptDataError, match="source went bad"):
        store.put(oid, broken())
    assert files_under(store.root) == [store.path_of(oid)]
    assert store.path_of(oid).read_bytes() == b"the good copy"
    other = new_object_id()
    with pytest.raises(CorruptDataError):
        store.put(other, broken())
    assert files_under(store.root) == [store.path_of(oid)]


def test_a_corrupted_copy_is_detected_by_read_back(store: FsBackend) -> None:
    oid = new_object_id()
    stored = store.put(oid, [os.urandom(5000)])
    path = store.path_of(oid)
    raw = bytearray(path.read_bytes())
    raw[1234] ^= 0x10
    path.write_bytes(bytes(raw))
    again = read_back(store, oid)
    assert again.size == stored.size
    assert again.sha256 != stored.sha256


def test_a_missing_root_is_unavailable_and_never_created(tmp_path: Path) -> None:
    store = FsBackend(tmp_path / "unmounted")
    oid = new_object_id()
    with pytest.raises(StoreUnavailableError, match="missing"):
        store.put(oid, [b"x"])
    with pytest.raises(StoreUnavailableError):
        store.open(oid)
    with pytest.raises(StoreUnavailableError):
        store.stat(oid)
    with pytest.raises(StoreUnavailableError):
        list(store.list())
    assert not (tmp_path / "unmounted").exists()


def test_the_root_vanishing_during_a_write_is_unavailable(store: FsBackend, tmp_path: Path) -> None:
    oid = new_object_id()

    def unmount_midway() -> Iterator[bytes]:
        yield b"a" * 1000
        store.root.rename(tmp_path / "elsewhere")
        yield b"b" * 1000

    with pytest.raises(StoreUnavailableError):
        store.put(oid, unmount_midway())
    assert not store.root.exists()


def test_list_skips_temporary_and_foreign_files(store: FsBackend) -> None:
    oid = new_object_id()
    store.put(oid, [b"x"])
    shard = store.path_of(oid).parent
    (shard / ".tmp-leftover").write_bytes(b"partial")
    (shard / "README").write_text("not an object")
    (store.root / "lost+found").mkdir()
    assert list(store.list()) == [oid]


def test_a_copy_larger_than_the_writeback_window_is_whole(store: FsBackend) -> None:
    oid = new_object_id()
    block = os.urandom(1 << 20)
    expected = hashlib.sha256()
    for _ in range(70):
        expected.update(block)
    stored = store.put(oid, (block for _ in range(70)))
    assert stored.sha256 == expected.hexdigest()
    assert read_back(store, oid) == stored
