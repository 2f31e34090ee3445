"""Two copies on two real directories: the dual write, failover on read, verify, repair and
delete, with faults made for real (a store's directory gone, a byte flipped, a copy deleted).
The same calls against S3 are in tests/integration/test_vault_s3.py."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dangan.errors import (
    CorruptDataError,
    KeyringError,
    NotFoundError,
    StoreUnavailableError,
)
from vault import (
    CopyStatus,
    FsBackend,
    Keyring,
    Vault,
    WrappedKey,
    WriteResult,
    ciphertext_size,
    new_object_id,
)

SEGMENT = 4096


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    for name in ("primary", "replica"):
        (tmp_path / name).mkdir()
    return Vault(
        FsBackend(tmp_path / "primary"), FsBackend(tmp_path / "replica"), Keyring.generate()
    )


def fs(vault: Vault, store: str) -> FsBackend:
    backend = vault.stores[store]
    assert isinstance(backend, FsBackend)
    return backend


def files(vault: Vault) -> list[Path]:
    return sorted(
        p for name in ("primary", "replica") for p in fs(vault, name).root.rglob("*") if p.is_file()
    )


def write(vault: Vault, data: bytes) -> WriteResult:
    return vault.write(
        new_object_id(),
        [data[i : i + 1000] for i in range(0, len(data), 1000)],
        segment_size=SEGMENT,
    )


def read_all(
    vault: Vault, result: WriteResult, ciphertext_sha256: str | None = None
) -> tuple[bytes, list[CopyStatus]]:
    seen: list[CopyStatus] = []
    with vault.read(
        result.object_id,
        result.wrapped_key,
        ciphertext_sha256=ciphertext_sha256,
        on_bad_copy=seen.append,
    ) as reader:
        data = b"".join(reader)
    assert reader.bad_copies == seen
    return data, seen


def flip(path: Path, at: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))


# --- writing --------------------------------------------------------------------------------


def test_a_write_stores_two_identical_verified_copies(vault: Vault) -> None:
    data = os.urandom(50_000)
    result = write(vault, data)
    assert not result.is_under_replicated
    assert result.plaintext_sha256 == hashlib.new(result.algorithm, data).hexdigest()
    assert result.ciphertext_size == ciphertext_size(len(data), SEGMENT)
    primary = fs(vault, "primary").path_of(result.object_id).read_bytes()
    replica = fs(vault, "replica").path_of(result.object_id).read_bytes()
    assert primary == replica
    assert hashlib.new(result.algorithm, primary).hexdigest() == result.ciphertext_sha256
    for name in ("primary", "replica"):
        copy = result.copies[name]
        assert (copy.ok, copy.size, copy.sha256) == (True, len(primary), result.ciphertext_sha256)
    assert read_all(vault, result) == (data, [])
    assert data[:1000] not in primary  # no plaintext on disk


def test_one_store_down_still_writes_one_copy(vault: Vault, tmp_path: Path) -> None:
    fs(vault, "replica").root.rename(tmp_path / "replica-unmounted")
    data = os.urandom(10_000)
    result = write(vault, data)
    assert result.is_under_replicated
    assert result.failed_stores == ["replica"]
    assert result.copies["primary"].ok
    assert isinstance(result.copies["replica"].error, StoreUnavailableError)
    assert "missing" in (result.copies["replica"].reason or "")
    assert not fs(vault, "replica").root.exists()
    assert read_all(vault, result)[0] == data


def test_both_stores_down_fails_and_leaves_nothing(vault: Vault, tmp_path: Path) -> None:
    fs(vault, "primary").root.rename(tmp_path / "p-gone")
    fs(vault, "replica").root.rename(tmp_path / "r-gone")
    with pytest.raises(StoreUnavailableError, match="could not be stored"):
        write(vault, os.urandom(10_000))
    assert not list((tmp_path / "p-gone").rglob("*"))
    assert not list((tmp_path / "r-gone").rglob("*"))


def test_a_store_lost_midway_leaves_nothing_in_it(vault: Vault, tmp_path: Path) -> None:
    replica = fs(vault, "replica")

    def upload() -> Iterator[bytes]:
        yield os.urandom(200_000)
        replica.root.rename(tmp_path / "replica-pulled")  # the disk goes away mid-write
        yield os.urandom(200_000)

    result = vault.write(new_object_id(), upload(), segment_size=SEGMENT)
    assert result.failed_stores == ["replica"]
    assert fs(vault, "primary").path_of(result.object_id).exists()


def test_a_failing_upload_leaves_nothing_anywhere(vault: Vault) -> None:
    def upload() -> Iterator[bytes]:
        yield os.urandom(100_000)
        raise ValueError("client went away")

    with pytest.raises(ValueError, match="client went away"):
        vault.write(new_object_id(), upload(), segment_size=SEGMENT)
    assert files(vault) == []


def test_writing_and_reading_need_a_keyring(tmp_path: Path) -> None:
    keyless = Vault(FsBackend(tmp_path), FsBackend(tmp_path))
    with pytest.raises(KeyringError):
        keyless.write(new_object_id(), [b"x"])


# --- reading with failover -----------------------------------------------------------------


def test_a_corrupt_primary_fails_over_midway_and_is_reported(vault: Vault) -> None:
    data = os.urandom(60_000)  # 15 segments
    result = write(vault, data)
    flip(fs(vault, "primary").path_of(result.object_id), 45_000)  # after several good ones
    got, bad = read_all(vault, result)
    assert got == data
    assert [(c.store, type(c.error)) for c in bad] == [("primary", CorruptDataError)]


def test_a_deleted_primary_fails_over_and_is_reported(vault: Vault) -> None:
    data = os.urandom(5_000)
    result = write(vault, data)
    fs(vault, "primary").path_of(result.object_id).unlink()
    got, bad = read_all(vault, result)
    assert got == data
    assert [(c.store, type(c.error)) for c in bad] == [("primary", NotFoundError)]


def test_a_primary_differing_from_the_catalog_fails_over(vault: Vault) -> None:
    data = os.urandom(5_000)
    result = write(vault, data)
    other = write(vault, data)  # a valid object, but another one, swapped in behind our back
    fs(vault, "primary").path_of(result.object_id).write_bytes(
        fs(vault, "primary").path_of(other.object_id).read_bytes()
    )
    got, bad = read_all(vault, result, ciphertext_sha256=result.ciphertext_sha256)
    assert got == data
    assert [c.store for c in bad] == ["primary"]


def test_both_copies_corrupt_is_an_error_never_data(vault: Vault) -> None:
    data = os.urandom(20_000)
    result = write(vault, data)
    flip(fs(vault, "primary").path_of(result.object_id), 100)
    flip(fs(vault, "replica").path_of(result.object_id), 15_000)
    received = bytearray()
    with pytest.raises(CorruptDataError, match="no good copy"):
        drain(vault, result, received)
    assert data.startswith(received)
    assert len(received) < len(data)


def test_no_copy_anywhere_is_not_found(vault: Vault) -> None:
    result = write(vault, b"x")
    vault.delete_object(result.object_id)
    with pytest.raises(NotFoundError):
        drain(vault, result, bytearray())


def test_an_unreachable_store_beats_a_corrupt_copy(vault: Vault, tmp_path: Path) -> None:
    result = write(vault, b"x" * 10_000)
    flip(fs(vault, "primary").path_of(result.object_id), 50)
    fs(vault, "replica").root.rename(tmp_path / "replica-away")
    with pytest.raises(StoreUnavailableError):
        drain(vault, result, bytearray())


def test_a_keyring_problem_is_not_blamed_on_a_copy(vault: Vault) -> None:
    result = write(vault, b"x")
    vault.keyring = Keyring.generate()
    seen: list[CopyStatus] = []
    with pytest.raises(KeyringError):
        vault.read(result.object_id, result.wrapped_key, on_bad_copy=seen.append)
    assert seen == []


def drain(vault: Vault, result: WriteResult, into: bytearray) -> None:
    for piece in vault.read(result.object_id, result.wrapped_key):
        into += piece


# --- verify, repair, delete -----------------------------------------------------------------


def test_verify_finds_each_kind_of_bad_copy(vault: Vault) -> None:
    result = write(vault, os.urandom(30_000))
    oid, size, digest = result.object_id, result.ciphertext_size, result.ciphertext_sha256

    def verify(
        store: str, wrapped: WrappedKey | None = None, plain: str | None = None
    ) -> CopyStatus:
        return vault.verify_copy(
            store,
            oid,
            size=size,
            ciphertext_sha256=digest,
            wrapped_key=wrapped,
            plaintext_sha256=plain,
        )

    assert verify("primary").ok
    assert verify("replica", result.wrapped_key, result.plaintext_sha256).ok
    assert not verify("replica", result.wrapped_key, "0" * 64).ok

    flip(fs(vault, "primary").path_of(oid), 20_000)
    status = verify("primary")
    assert (status.ok, type(status.error)) == (False, CorruptDataError)

    path = fs(vault, "replica").path_of(oid)
    path.write_bytes(path.read_bytes()[:-10])
    assert "bytes" in (verify("replica").reason or "")
    path.unlink()
    assert isinstance(verify("replica").error, NotFoundError)


def test_verify_needs_no_keyring_unless_deep(vault: Vault) -> None:
    result = write(vault, b"abc")
    keyless = Vault(vault.stores["primary"], vault.stores["replica"])
    status = keyless.verify_copy(
        "primary",
        result.object_id,
        size=result.ciphertext_size,
        ciphertext_sha256=result.ciphertext_sha256,
    )
    assert status.ok
    with pytest.raises(KeyringError):
        keyless.verify_copy(
            "primary",
            result.object_id,
            size=result.ciphertext_size,
            ciphertext_sha256=result.ciphertext_sha256,
            wrapped_key=result.wrapped_key,
        )


def test_repair_restores_a_bad_copy_from_the_good_one(vault: Vault) -> None:
    data = os.urandom(30_000)
    result = write(vault, data)
    primary = fs(vault, "primary").path_of(result.object_id)
    flip(primary, 10)
    keyless = Vault(vault.stores["primary"], vault.stores["replica"])
    status = keyless.repair_copy(result.object_id, "replica", "primary", result.ciphertext_sha256)
    assert (status.ok, status.sha256) == (True, result.ciphertext_sha256)
    assert primary.read_bytes() == fs(vault, "replica").path_of(result.object_id).read_bytes()
    assert read_all(vault, result) == (data, [])

    primary.unlink()
    keyless.repair_copy(result.object_id, "replica", "primary", result.ciphertext_sha256)
    assert read_all(vault, result) == (data, [])


def test_repair_from_a_bad_source_changes_nothing(vault: Vault) -> None:
    result = write(vault, os.urandom(30_000))
    primary = fs(vault, "primary").path_of(result.object_id)
    replica = fs(vault, "replica").path_of(result.object_id)
    flip(primary, 10)
    flip(replica, 20)
    before = primary.read_bytes()
    with pytest.raises(CorruptDataError):
        vault.repair_copy(result.object_id, "replica", "primary", result.ciphertext_sha256)
    assert primary.read_bytes() == before
    assert len(files(vault)) == 2  # no temporary file left


def test_delete_removes_both_copies_and_can_run_again(vault: Vault, tmp_path: Path) -> None:
    result = write(vault, b"to be disposed of")
    vault.delete_object(result.object_id)
    vault.delete_object(result.object_id)
    assert files(vault) == []
    other = write(vault, b"another")
    fs(vault, "replica").root.rename(tmp_path / "replica-away")
    with pytest.raises(StoreUnavailableError, match="replica"):
        vault.delete_object(other.object_id)
    assert not fs(vault, "primary").path_of(other.object_id).exists()
