"""The vault against a real S3 server (SeaweedFS on loopback), faults produced for real:
the server stopped, an object deleted or a byte flipped behind the vault's back."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dangan.errors import CorruptDataError, NotFoundError, StoreUnavailableError
from tests.services import S3Server
from vault import (
    CopyStatus,
    FsBackend,
    Keyring,
    S3Backend,
    Vault,
    WriteResult,
    new_object_id,
    read_back,
)

MIB = 1 << 20


@pytest.fixture
def s3_store(s3_server: S3Server, s3_bucket: str) -> S3Backend:
    return S3Backend(s3_server.client(retries=1), s3_bucket, part_size=5 * MIB, backoff=0.05)


def pieces(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


def read_stopping_midway(stream: Iterator[bytes], server: S3Server) -> None:
    next(stream)
    server.stop()
    for _ in stream:
        pass


# --- the backend ----------------------------------------------------------------------------


def test_put_open_stat_list_delete(s3_store: S3Backend) -> None:
    oid = new_object_id()
    data = os.urandom(MIB + 123)
    stored = s3_store.put(oid, pieces(data, 100_000))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    with s3_store.open(oid) as stream:
        assert b"".join(stream) == data
    assert s3_store.stat(oid).size == len(data)
    assert read_back(s3_store, oid) == stored
    assert list(s3_store.list()) == [oid]
    s3_store.delete(oid)
    s3_store.delete(oid)
    assert list(s3_store.list()) == []
    with pytest.raises(NotFoundError):
        s3_store.open(oid)
    with pytest.raises(NotFoundError):
        s3_store.stat(oid)


def test_an_empty_object_round_trips(s3_store: S3Backend) -> None:
    oid = new_object_id()
    assert s3_store.put(oid, []).size == 0
    assert read_back(s3_store, oid).size == 0


def test_a_large_object_goes_up_in_parts(
    s3_store: S3Backend, s3_server: S3Server, s3_bucket: str
) -> None:
    oid = new_object_id()
    data = os.urandom(12 * MIB + 7)
    stored = s3_store.put(oid, pieces(data))
    assert stored == read_back(s3_store, oid)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    etag = s3_server.client().stat_object(s3_bucket, oid).etag or ""
    assert etag.strip('"').endswith("-3")  # three parts of 5, 5 and 2 MiB


@pytest.mark.parametrize("size", [MIB, 11 * MIB])
def test_a_failing_source_leaves_nothing(s3_store: S3Backend, size: int) -> None:
    oid = new_object_id()

    def broken() -> Iterator[bytes]:
        yield from pieces(os.urandom(size))
        raise CorruptDataError("the source went bad")

    with pytest.raises(CorruptDataError, match="source went bad"):
        s3_store.put(oid, broken())
    assert list(s3_store.list()) == []


def test_a_stopped_server_is_unavailable(s3_store: S3Backend, s3_server: S3Server) -> None:
    oid = new_object_id()
    s3_store.put(oid, [b"x"])
    s3_server.stop()
    with pytest.raises(StoreUnavailableError):
        s3_store.put(new_object_id(), [b"y" * 1000])
    with pytest.raises(StoreUnavailableError):
        s3_store.open(oid)
    with pytest.raises(StoreUnavailableError):
        s3_store.stat(oid)
    with pytest.raises(StoreUnavailableError):
        s3_store.delete(oid)
    with pytest.raises(StoreUnavailableError):
        list(s3_store.list())
    s3_server.start()
    assert read_back(s3_store, oid).size == 1


def test_a_server_stopped_while_reading_is_unavailable(
    s3_store: S3Backend, s3_server: S3Server
) -> None:
    oid = new_object_id()
    s3_store.put(oid, pieces(os.urandom(40 * MIB)))
    with s3_store.open(oid) as stream, pytest.raises(StoreUnavailableError):
        read_stopping_midway(stream, s3_server)


def test_a_missing_bucket_is_unavailable(s3_server: S3Server) -> None:
    store = S3Backend(s3_server.client(retries=0), "no-such-bucket-here")
    with pytest.raises(StoreUnavailableError, match="bucket"):
        store.put(new_object_id(), [b"x"])
    with pytest.raises(StoreUnavailableError, match="bucket"):
        list(store.list())


def test_connect_builds_a_working_store(s3_server: S3Server, s3_bucket: str) -> None:
    store = S3Backend.connect(
        s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        bucket=s3_bucket,
        secure=False,
    )
    oid = new_object_id()
    store.put(oid, [b"hello"])
    assert read_back(store, oid).size == 5
    assert s3_server.endpoint in store.name
    assert s3_server.secret_key not in repr(store)
    client = s3_server.client()
    client.put_object(s3_bucket, "not-an-object-id", io.BytesIO(b"z"), 1)
    assert list(store.list()) == [oid]


# --- two copies -----------------------------------------------------------------------------


@pytest.fixture
def two_buckets(s3_server: S3Server, s3_bucket: str) -> Iterator[Vault]:
    other = s3_server.make_bucket()
    client = s3_server.client(retries=1)
    yield Vault(
        S3Backend(client, s3_bucket, part_size=5 * MIB, backoff=0.05),
        S3Backend(client, other, part_size=5 * MIB, backoff=0.05),
        Keyring.generate(),
    )
    s3_server.start()
    s3_server.remove_bucket(other)


@pytest.fixture
def s3_and_fs(s3_store: S3Backend, tmp_path: Path) -> Vault:
    (tmp_path / "replica").mkdir()
    return Vault(s3_store, FsBackend(tmp_path / "replica"), Keyring.generate())


def read_all(vault: Vault, result: WriteResult) -> tuple[bytes, list[CopyStatus]]:
    seen: list[CopyStatus] = []
    with vault.read(
        result.object_id,
        result.wrapped_key,
        plaintext_sha256=result.plaintext_sha256,
        ciphertext_sha256=result.ciphertext_sha256,
        on_bad_copy=seen.append,
    ) as reader:
        return b"".join(reader), seen


def test_a_large_object_round_trips_through_two_buckets(two_buckets: Vault) -> None:
    data = os.urandom(13 * MIB + 11)
    result = two_buckets.write(new_object_id(), pieces(data, 3 * MIB))
    assert not result.is_under_replicated
    for name in ("primary", "replica"):
        assert read_back(two_buckets.stores[name], result.object_id).sha256 == (
            result.ciphertext_sha256
        )
    assert read_all(two_buckets, result) == (data, [])


def test_a_stopped_server_leaves_one_good_copy(s3_and_fs: Vault, s3_server: S3Server) -> None:
    s3_server.stop()
    data = os.urandom(7 * MIB)
    result = s3_and_fs.write(new_object_id(), pieces(data))
    assert result.failed_stores == ["primary"]
    assert isinstance(result.copies["primary"].error, StoreUnavailableError)
    assert result.copies["replica"].ok
    got, bad = read_all(s3_and_fs, result)  # the primary is still down: served by the replica
    assert got == data
    assert [(c.store, type(c.error)) for c in bad] == [("primary", StoreUnavailableError)]

    s3_server.start()
    status = s3_and_fs.repair_copy(result.object_id, "replica", "primary", result.ciphertext_sha256)
    assert status.ok
    assert read_all(s3_and_fs, result) == (data, [])


def test_both_stores_down_leaves_nothing(
    s3_and_fs: Vault, s3_server: S3Server, tmp_path: Path
) -> None:
    replica = s3_and_fs.stores["replica"]
    assert isinstance(replica, FsBackend)
    replica.root.rename(tmp_path / "replica-away")
    s3_server.stop()
    with pytest.raises(StoreUnavailableError):
        s3_and_fs.write(new_object_id(), pieces(os.urandom(2 * MIB)))
    s3_server.start()
    assert list(s3_and_fs.stores["primary"].list()) == []
    assert not list((tmp_path / "replica-away").rglob("*"))


@pytest.mark.parametrize("fault", ["corrupted", "deleted"])
def test_a_bad_primary_copy_fails_over_to_the_replica(
    two_buckets: Vault, s3_server: S3Server, fault: str
) -> None:
    data = os.urandom(3 * MIB + 5)
    result = two_buckets.write(new_object_id(), pieces(data))
    primary = two_buckets.stores["primary"]
    assert isinstance(primary, S3Backend)
    client = s3_server.client()
    if fault == "corrupted":
        response = client.get_object(primary.bucket, result.object_id)
        try:
            stored = bytearray(response.read())
        finally:
            response.close()
            response.release_conn()
        stored[2 * MIB] ^= 0x40  # one bit in the third segment, behind the vault's back
        client.put_object(primary.bucket, result.object_id, io.BytesIO(stored), len(stored))
        expected_error: type[Exception] = CorruptDataError
    else:
        client.remove_object(primary.bucket, result.object_id)
        expected_error = NotFoundError

    got, bad = read_all(two_buckets, result)
    assert got == data
    assert [(c.store, type(c.error)) for c in bad] == [("primary", expected_error)]
    finding = two_buckets.verify_copy(
        "primary",
        result.object_id,
        size=result.ciphertext_size,
        ciphertext_sha256=result.ciphertext_sha256,
    )
    assert isinstance(finding.error, expected_error)

    two_buckets.repair_copy(result.object_id, "replica", "primary", result.ciphertext_sha256)
    assert two_buckets.verify_copy(
        "primary",
        result.object_id,
        size=result.ciphertext_size,
        ciphertext_sha256=result.ciphertext_sha256,
        wrapped_key=result.wrapped_key,
    ).ok
    assert read_all(two_buckets, result) == (data, [])


def test_delete_object_removes_both_s3_copies(two_buckets: Vault) -> None:
    result = two_buckets.write(new_object_id(), [b"disposed of"])
    two_buckets.delete_object(result.object_id)
    for name in ("primary", "replica"):
        assert list(two_buckets.stores[name].list()) == []
