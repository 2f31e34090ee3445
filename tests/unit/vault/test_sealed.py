"""Sealed objects on two real directories: they carry their own wrapped data key, so the
stores and the keyring alone open them, and any damage to that prefix is caught."""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from dangan.errors import CorruptDataError, KeyringError, StoreUnavailableError
from vault import (
    MAGIC_SEALED,
    FsBackend,
    Keyring,
    Vault,
    WriteResult,
    ciphertext_size,
    is_sealed,
    new_object_id,
)

SEGMENT = 4096
DATA = bytes(range(256)) * 40  # a few segments and a short one


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    for name in ("primary", "replica"):
        (tmp_path / name).mkdir()
    return Vault(
        FsBackend(tmp_path / "primary"), FsBackend(tmp_path / "replica"), Keyring.generate()
    )


def copy_path(vault: Vault, store: str, object_id: str) -> Path:
    backend = vault.stores[store]
    assert isinstance(backend, FsBackend)
    [path] = [p for p in backend.root.rglob(object_id) if p.is_file()]
    return path


def write_sealed(vault: Vault, data: bytes = DATA) -> WriteResult:
    return vault.write_sealed(new_object_id(), [data], segment_size=SEGMENT)


def prefix_size(result: WriteResult) -> int:
    return len(MAGIC_SEALED) + 2 + len(result.wrapped_key.to_bytes())


def test_a_sealed_object_round_trips_without_the_wrapped_key(vault: Vault) -> None:
    result = write_sealed(vault)
    assert not result.is_under_replicated
    assert result.ciphertext_size == prefix_size(result) + ciphertext_size(len(DATA), SEGMENT)
    for store in ("primary", "replica"):
        stored = copy_path(vault, store, result.object_id).read_bytes()
        assert stored.startswith(MAGIC_SEALED + len(result.wrapped_key.to_bytes()).to_bytes(2))
        assert len(stored) == result.ciphertext_size
        assert hashlib.new(result.algorithm, stored).hexdigest() == result.ciphertext_sha256
        assert is_sealed(vault.stores[store], result.object_id)
    with vault.read_sealed(result.object_id, ciphertext_sha256=result.ciphertext_sha256) as r:
        assert b"".join(r) == DATA
        assert r.served_from == "primary"
    with vault.read(result.object_id, result.wrapped_key) as r:  # the catalog's way works too
        assert b"".join(r) == DATA


def test_an_empty_sealed_object_round_trips(vault: Vault) -> None:
    result = write_sealed(vault, b"")
    with vault.read_sealed(result.object_id) as r:
        assert b"".join(r) == b""


def test_verify_and_repair_cover_the_prefix(vault: Vault) -> None:
    result = write_sealed(vault)
    check = {"size": result.ciphertext_size, "ciphertext_sha256": result.ciphertext_sha256}
    assert vault.verify_copy("replica", result.object_id, **check).ok
    deep = vault.verify_copy(
        "replica",
        result.object_id,
        wrapped_key=result.wrapped_key,
        plaintext_sha256=result.plaintext_sha256,
        **check,
    )
    assert deep.ok
    path = copy_path(vault, "replica", result.object_id)
    data = bytearray(path.read_bytes())
    data[len(MAGIC_SEALED) + 5] ^= 0x01  # inside the wrapped key
    path.write_bytes(bytes(data))
    assert not vault.verify_copy("replica", result.object_id, **check).ok
    assert vault.repair_copy(result.object_id, "primary", "replica", result.ciphertext_sha256).ok
    assert vault.verify_copy("replica", result.object_id, **check).ok


def test_a_plain_object_is_not_sealed(vault: Vault) -> None:
    result = vault.write(new_object_id(), [DATA], segment_size=SEGMENT)
    assert not is_sealed(vault.stores["primary"], result.object_id)
    with pytest.raises(CorruptDataError, match="not a sealed object"):
        b"".join(vault.read_sealed(result.object_id))


@pytest.mark.parametrize("keep", [3, len(MAGIC_SEALED) + 1, len(MAGIC_SEALED) + 2 + 20])
def test_a_truncated_prefix_is_corrupt(vault: Vault, keep: int) -> None:
    result = write_sealed(vault)
    for store in ("primary", "replica"):
        path = copy_path(vault, store, result.object_id)
        path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(CorruptDataError):
        b"".join(vault.read_sealed(result.object_id))


@pytest.mark.parametrize(
    "where",
    [
        0,  # the magic
        len(MAGIC_SEALED) + 1,  # the length
        -1,  # the last byte of the wrapped key's seal
    ],
)
def test_a_tampered_prefix_is_corrupt(vault: Vault, where: int) -> None:
    result = write_sealed(vault)
    offset = where if where >= 0 else prefix_size(result) + where
    for store in ("primary", "replica"):
        path = copy_path(vault, store, result.object_id)
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
    reader = vault.read_sealed(result.object_id)
    with pytest.raises(CorruptDataError):
        b"".join(reader)
    assert [c.store for c in reader.bad_copies] == ["primary", "replica"]


def test_a_bad_primary_prefix_fails_over_to_the_replica(vault: Vault) -> None:
    result = write_sealed(vault)
    path = copy_path(vault, "primary", result.object_id)
    data = bytearray(path.read_bytes())
    data[prefix_size(result) - 1] ^= 0x01
    path.write_bytes(bytes(data))
    with vault.read_sealed(result.object_id) as reader:
        assert b"".join(reader) == DATA
    assert reader.served_from == "replica"
    assert [c.store for c in reader.bad_copies] == ["primary"]


def test_another_objects_sealed_bytes_do_not_open(vault: Vault) -> None:
    a, b = write_sealed(vault), write_sealed(vault)
    for store in ("primary", "replica"):
        copy_path(vault, store, a.object_id).write_bytes(
            copy_path(vault, store, b.object_id).read_bytes()
        )
    with pytest.raises(CorruptDataError):
        b"".join(vault.read_sealed(a.object_id))


def test_rewriting_a_sealed_object_replaces_both_copies(vault: Vault) -> None:
    first = write_sealed(vault)
    assert vault.keyring is not None
    old = vault.keyring.current.id
    vault.keyring.rotate()
    second = vault.write_sealed(first.object_id, [b"new"], segment_size=SEGMENT)
    assert second.wrapped_key.key_id != old
    vault.keyring.retire(old, objects_using=0)
    with vault.read_sealed(first.object_id) as r:
        assert b"".join(r) == b"new"


def test_a_retired_key_is_a_keyring_error_not_a_bad_copy(vault: Vault) -> None:
    result = write_sealed(vault)
    assert vault.keyring is not None
    old = vault.keyring.current.id
    vault.keyring.rotate()
    vault.keyring.retire(old, objects_using=0)
    reader = vault.read_sealed(result.object_id)
    with pytest.raises(KeyringError):
        b"".join(reader)
    assert reader.bad_copies == []


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """A real fault for every store at once: no file of this process may grow past ``limit``
    bytes (a write past it fails with EFBIG, as on a full disk); deleting still works."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_failed_overwrite_leaves_the_copies_it_did_not_replace(vault: Vault) -> None:
    first = write_sealed(vault)
    before = {s: copy_path(vault, s, first.object_id).read_bytes() for s in ("primary", "replica")}
    with file_size_limit(64 * 1024), pytest.raises(StoreUnavailableError):
        vault.write_sealed(first.object_id, [os.urandom(300_000)], segment_size=SEGMENT)
    for store, data in before.items():  # neither put replaced anything: nothing was deleted
        assert copy_path(vault, store, first.object_id).read_bytes() == data
    with vault.read_sealed(first.object_id) as reader:
        assert b"".join(reader) == DATA
    assert reader.bad_copies == []


def corrupt_tail(vault: Vault, store: str, object_id: str) -> None:
    path = copy_path(vault, store, object_id)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # in the last segment: earlier pieces are served first
    path.write_bytes(bytes(data))


def test_a_mid_stream_failover_resumes_on_the_same_version(vault: Vault) -> None:
    result = write_sealed(vault)
    corrupt_tail(vault, "primary", result.object_id)
    with vault.read_sealed(result.object_id) as reader:
        assert b"".join(reader) == DATA
    assert reader.served_from == "replica"
    assert [c.store for c in reader.bad_copies] == ["primary"]


def drain_into(pieces: Iterator[bytes], received: bytearray) -> None:
    """Read ``pieces`` into ``received``, keeping what arrived before an error."""
    for piece in pieces:
        received.extend(piece)


def test_a_mid_stream_failover_never_splices_two_versions(vault: Vault) -> None:
    first = write_sealed(vault)
    old_replica = copy_path(vault, "replica", first.object_id).read_bytes()
    newer = bytes(reversed(DATA))
    vault.write_sealed(first.object_id, [newer], segment_size=SEGMENT)
    copy_path(vault, "replica", first.object_id).write_bytes(old_replica)  # a stale replica
    corrupt_tail(vault, "primary", first.object_id)
    received = bytearray()
    reader = vault.read_sealed(first.object_id)
    with pytest.raises(CorruptDataError, match="another version"):
        drain_into(reader, received)
    assert received
    assert newer.startswith(bytes(received))  # only the newer version's pieces
    assert [c.store for c in reader.bad_copies] == ["primary"]
