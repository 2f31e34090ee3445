"""The vault's services against two real, independent S3 servers (SeaweedFS), as production
runs two MinIO servers: ``dangan init`` makes the buckets; a store stopped during a batch of
uploads loses nothing, leaves the records under-replicated, and the replicate jobs catch up
once it is back; a copy deleted behind dangan's back is found by verify and restored."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.services import Runtime, ingest, initialize
from api.services.fixity import repair_all, verify_all
from api.services.reading import open_original
from catalog import JobState, NewRecord, RecordStatus, get_record, list_jobs
from dangan.config import load_settings
from tests.corpus import CORPUS, scan
from tests.queue import VAULT_KINDS, drain
from tests.services import S3Server

SCAN = CORPUS / "IMG_3214.png"
TYPE = "新生入学"


def _use_s3(env: pytest.MonkeyPatch, store: str, server: S3Server, bucket: str) -> None:
    for name, value in server.vault_env(store, bucket).items():
        env.setenv(name, value)


@pytest.fixture
def buckets(s3_server: S3Server, s3_server_b: S3Server) -> Iterator[list[str]]:
    """Bucket names for the primary (on ``s3_server``) and the replica (on ``s3_server_b``)."""
    names = [f"dangan-it-{secrets.token_hex(5)}" for _ in range(2)]
    yield names
    for server, name in zip((s3_server, s3_server_b), names, strict=True):
        server.start()
        if server.client().bucket_exists(name):
            server.remove_bucket(name)


def _runtime(tmp_path: Path) -> Runtime:
    scan(SCAN.name)  # skips locally, fails in CI, when the corpus is missing
    rt = Runtime(load_settings(data_dir=tmp_path / "data"))
    initialize(rt, admin="root", password="correct-horse-battery")
    return rt


def _run_jobs(rt: Runtime) -> None:
    drain(rt, VAULT_KINDS)


def test_a_replica_down_during_a_batch_catches_up_after_restart(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    s3_server: S3Server,
    s3_server_b: S3Server,
    buckets: list[str],
) -> None:
    _use_s3(clean_env, "primary", s3_server, buckets[0])
    _use_s3(clean_env, "replica", s3_server_b, buckets[1])
    rt = _runtime(tmp_path)
    try:
        assert s3_server.client().bucket_exists(buckets[0])  # made by init
        assert s3_server_b.client().bucket_exists(buckets[1])
        first = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
        assert first.status is RecordStatus.processing
        s3_server_b.stop()
        batch = [
            ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2024), actor="system", force=True)
            for _ in range(3)
        ]
        assert {r.status for r in batch} == {RecordStatus.under_replicated}
        for record in batch:  # nothing lost: each reads back from the primary
            assert b"".join(open_original(rt, record.archive_code, actor="system").chunks) == (
                SCAN.read_bytes()
            )
        s3_server_b.start()
        _run_jobs(rt)
        with rt.db.read() as s:
            statuses = {get_record(s, r.archive_code).status for r in batch}
            assert not list_jobs(s, state=JobState.dead)
        assert statuses == {RecordStatus.processing}
        assert verify_all(rt, deep=True) == []
    finally:
        rt.close()


def test_a_copy_deleted_from_a_bucket_is_found_and_restored(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    s3_server: S3Server,
    s3_server_b: S3Server,
    buckets: list[str],
) -> None:
    _use_s3(clean_env, "primary", s3_server, buckets[0])
    _use_s3(clean_env, "replica", s3_server_b, buckets[1])
    rt = _runtime(tmp_path)
    try:
        record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
        assert record.status is RecordStatus.processing
        client = s3_server_b.client()
        [name] = [o.object_name for o in client.list_objects(buckets[1], recursive=True)]
        assert name is not None
        client.remove_object(buckets[1], name)
        [problem] = verify_all(rt)
        assert (problem.store, problem.object_id, problem.kind) == ("replica", name, "missing")
        report = repair_all(rt)
        assert report.restored == [(name, "replica")]
        assert verify_all(rt, deep=True) == []
    finally:
        rt.close()
