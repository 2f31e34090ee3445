"""The fixity cycle against two real S3 servers (SeaweedFS): a flipped bit, a truncation or a
deletion in either bucket is found and repaired, both copies gone leaves the record damaged and
unserved, and a stopped server is reported unreachable without marking anything."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.services import Runtime, ingest, initialize
from api.services.fixity_cycle import FixityCyclePayload, run_cycle_slice, verify_report
from api.services.reading import open_original
from catalog import (
    CheckResult,
    CopyState,
    NewRecord,
    ObjectRole,
    RecordStatus,
    get_object,
    get_record,
    objects_of_record,
)
from dangan.config import load_settings
from dangan.errors import CorruptDataError
from tests.corpus import CORPUS, scan
from tests.services import S3Server

SCAN = CORPUS / "IMG_3214.png"
TYPE = "新生入学"


def _use_s3(env: pytest.MonkeyPatch, store: str, server: S3Server, bucket: str) -> None:
    for name, value in server.vault_env(store, bucket).items():
        env.setenv(name, value)


@pytest.fixture
def s3rt(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, s3_server: S3Server, s3_server_b: S3Server
) -> Iterator[tuple[Runtime, dict[str, tuple[S3Server, str]]]]:
    scan(SCAN.name)
    names = [f"dangan-fx-{secrets.token_hex(5)}" for _ in range(2)]
    stores = {"primary": (s3_server, names[0]), "replica": (s3_server_b, names[1])}
    for store, (server, bucket) in stores.items():
        _use_s3(clean_env, store, server, bucket)
    clean_env.setenv("DANGAN_FIXITY__DEEP_SHARE", "0")
    rt = Runtime(load_settings(data_dir=tmp_path / "data"))
    initialize(rt, admin="root", password="correct-horse-battery")
    yield rt, stores
    rt.close()
    for server, bucket in stores.values():
        server.start()
        if server.client().bucket_exists(bucket):
            server.remove_bucket(bucket)


def _ingest(rt: Runtime) -> tuple[str, str]:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    with rt.db.read() as s:
        [obj] = [o for o in objects_of_record(s, record.id) if o.role is ObjectRole.original]
    return record.archive_code, obj.id


def _damage(server: S3Server, bucket: str, name: str, fault: str) -> None:
    client = server.client()
    if fault == "delete":
        client.remove_object(bucket, name)
        return
    resp = client.get_object(bucket, name)
    try:
        data = bytearray(resp.read())
    finally:
        resp.close()
        resp.release_conn()
    if fault == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        del data[-100:]
    client.put_object(bucket, name, io.BytesIO(bytes(data)), len(data))


@pytest.mark.parametrize(
    ("store", "fault"),
    [("primary", "flip"), ("replica", "truncate"), ("replica", "delete"), ("primary", "delete")],
)
def test_a_fault_in_one_bucket_is_found_and_repaired(
    s3rt: tuple[Runtime, dict[str, tuple[S3Server, str]]], store: str, fault: str
) -> None:
    rt, stores = s3rt
    code, object_id = _ingest(rt)
    server, bucket = stores[store]
    _damage(server, bucket, object_id, fault)
    report = run_cycle_slice(rt, FixityCyclePayload(), job_id=1, actor="test")
    assert (report.checked, report.repaired, report.damaged) == (2, 1, 0)
    assert verify_report(rt, deep=True).problems == []
    assert b"".join(open_original(rt, code, actor="test").chunks) == SCAN.read_bytes()


def test_both_copies_bad_is_damaged_and_never_served(
    s3rt: tuple[Runtime, dict[str, tuple[S3Server, str]]],
) -> None:
    rt, stores = s3rt
    code, object_id = _ingest(rt)
    _damage(*stores["primary"], object_id, "flip")
    _damage(*stores["replica"], object_id, "delete")
    report = run_cycle_slice(rt, FixityCyclePayload(), job_id=1, actor="test")
    assert (report.repaired, report.damaged) == (0, 1)
    with rt.db.read() as s:
        assert get_record(s, code).status is RecordStatus.damaged
    with pytest.raises(CorruptDataError):
        open_original(rt, code, actor="test")


def test_a_stopped_server_is_unreachable_and_marks_nothing(
    s3rt: tuple[Runtime, dict[str, tuple[S3Server, str]]],
) -> None:
    rt, stores = s3rt
    _code, object_id = _ingest(rt)
    server, _bucket = stores["replica"]
    server.stop()
    try:
        report = run_cycle_slice(rt, FixityCyclePayload(), job_id=1, actor="test")
    finally:
        server.start()
    assert (report.ok, report.unreachable) == (1, 1)
    with rt.db.read() as s:
        copy = get_object(s, object_id).copy_in("replica")
    assert copy is not None
    assert (copy.state, copy.check_result) == (CopyState.ok, CheckResult.unreachable)
