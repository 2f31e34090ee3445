"""The vault's services on the embedded default (SQLite, two fs stores) with a real scan:
intake, the jobs it queues, reading with failover, fixity and repair, and key rotation."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.services import Runtime, ingest, initialize
from api.services.fixity import repair_all, verify_all
from api.services.jobs import KEYS_REWRAP, rewrite_sidecar, write_sidecar
from api.services.keys import objects_left_to_rewrap, retire_key, rewrap_all, rotate_keyring
from api.services.reading import open_original
from catalog import (
    CopyState,
    JobState,
    NewRecord,
    ObjectRole,
    RecordStatus,
    count_objects_by_key,
    get_object,
    get_record,
    get_user,
    list_events,
    list_jobs,
    objects_of_record,
)
from dangan.config import Settings
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    InvalidInputError,
    KeyringError,
    PermissionDeniedError,
)
from tests.corpus import CORPUS, scan
from tests.queue import VAULT_KINDS, drain
from vault import WrappedKey, load_keyring

SCAN = CORPUS / "IMG_3214.png"
TYPE = "新生入学"


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    scan(SCAN.name)  # skips locally, fails in CI, when the corpus is missing
    runtime = Runtime(settings)
    initialize(runtime, admin="root", password="correct-horse-battery")
    yield runtime
    runtime.close()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _stores(rt: Runtime) -> tuple[Path, Path]:
    p, r = rt.settings.vault.primary.path, rt.settings.vault.replica.path
    assert p is not None
    assert r is not None
    return p, r


def _run_jobs(rt: Runtime) -> int:
    return drain(rt, VAULT_KINDS)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ingest_stores_two_encrypted_copies_and_queues_the_sidecar(rt: Runtime) -> None:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    assert record.archive_code == f"2023-{TYPE}-001"
    assert record.status is RecordStatus.processing
    primary, replica = _stores(rt)
    for root in (primary, replica):
        [copy] = _files(root)
        assert SCAN.read_bytes()[:64] not in copy.read_bytes()
    with rt.db.read() as s:
        [obj] = objects_of_record(s, record.id)
        assert obj.size == SCAN.stat().st_size
        assert obj.plaintext_sha256 == _sha(SCAN)
        kinds = {j.kind for j in list_jobs(s, state=JobState.queued)}
    assert kinds == {"vault.sidecar", "ocr.rasterize"}

    assert _run_jobs(rt) == 1
    with rt.db.read() as s:
        objs = objects_of_record(s, record.id)
    sidecar = next(o for o in objs if o.role is ObjectRole.sidecar)
    assert sidecar.wrapped_key is not None
    with rt.vault.read(sidecar.id, WrappedKey.from_bytes(sidecar.wrapped_key)) as reader:
        doc = json.loads(b"".join(reader))
    assert doc["archive_code"] == record.archive_code
    assert write_sidecar(rt, record.archive_code, actor="system") is None  # one is enough


def test_a_bad_type_or_a_non_scan_stores_nothing(rt: Runtime, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        ingest(rt, SCAN, NewRecord(business_type="no such type", year=2023), actor="system")
    text = tmp_path / "notes.txt"
    text.write_text("not a scan")
    with pytest.raises(InvalidInputError):
        ingest(rt, text, NewRecord(business_type=TYPE, year=2023), actor="system")
    primary, replica = _stores(rt)
    assert _files(primary) == _files(replica) == []


def test_a_failed_catalog_transaction_removes_the_copies(rt: Runtime) -> None:
    code = f"2020-{TYPE}-007"
    ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2020, archive_code=code), actor="system")
    primary, replica = _stores(rt)
    before = (_files(primary), _files(replica))
    with pytest.raises(ConflictError):
        ingest(
            rt, SCAN, NewRecord(business_type=TYPE, year=2020, archive_code=code), actor="system"
        )
    assert (_files(primary), _files(replica)) == before


def test_a_store_down_at_intake_is_caught_up_by_the_replicate_job(rt: Runtime) -> None:
    primary, replica = _stores(rt)
    away = replica.with_name("replica-unmounted")
    replica.rename(away)
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    assert record.status is RecordStatus.under_replicated
    away.rename(replica)
    _run_jobs(rt)
    with rt.db.read() as s:
        assert get_record(s, record.archive_code).status is RecordStatus.processing
        assert not list_jobs(s, state=JobState.dead)
    [p_copy, *_] = _files(primary)
    assert [f.read_bytes() for f in _files(replica) if f.name == p_copy.name] == [
        p_copy.read_bytes()
    ]


def _flip(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _read(rt: Runtime, code: str) -> bytes:
    opened = open_original(rt, code, actor="system")
    return b"".join(opened.chunks)


def test_a_corrupt_copy_is_read_around_marked_and_repaired(rt: Runtime) -> None:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    assert _read(rt, record.archive_code) == SCAN.read_bytes()
    primary, _ = _stores(rt)
    [copy] = _files(primary)
    _flip(copy)
    assert _read(rt, record.archive_code) == SCAN.read_bytes()
    with rt.db.read() as s:
        obj = get_object(s, copy.name)
        assert obj.copy_in("primary").state is CopyState.bad  # type: ignore[union-attr]
        assert get_record(s, record.archive_code).status is RecordStatus.under_replicated
        assert {j.kind for j in list_jobs(s, state=JobState.queued)} >= {"vault.repair"}
    _run_jobs(rt)
    with rt.db.read() as s:
        assert get_record(s, record.archive_code).status is RecordStatus.processing
    assert _sha(copy) == obj.copy_in("replica").ciphertext_sha256  # type: ignore[union-attr]


def test_both_copies_bad_is_an_error_and_an_event(rt: Runtime) -> None:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    for root in _stores(rt):
        [copy] = _files(root)
        _flip(copy)
    with pytest.raises(CorruptDataError):
        _read(rt, record.archive_code)
    with rt.db.read() as s:
        events = list_events(s, action="record.read_failed")
    assert [e.outcome for e in events] == ["error"]


def test_an_admin_may_not_read_content_and_the_attempt_is_audited(rt: Runtime) -> None:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    with rt.db.read() as s:
        admin = get_user(s, "root")
    with pytest.raises(PermissionDeniedError):
        open_original(rt, record.archive_code, actor="root", user=admin)
    with rt.db.read() as s:
        events = list_events(s, action="record.read_content")
    assert [e.outcome for e in events] == ["denied"]


@pytest.mark.parametrize("damage", ["flip", "delete"])
def test_verify_finds_a_damaged_copy_and_repair_restores_it(rt: Runtime, damage: str) -> None:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    assert verify_all(rt) == []
    assert verify_all(rt, deep=True) == []
    _, replica = _stores(rt)
    [copy] = _files(replica)
    if damage == "flip":
        _flip(copy, offset=copy.stat().st_size - 1)
    else:
        copy.unlink()
    [problem] = verify_all(rt, deep=True)
    assert (problem.object_id, problem.store) == (copy.name, "replica")
    assert problem.kind == ("bad" if damage == "flip" else "missing")
    with rt.db.read() as s:
        assert get_record(s, record.archive_code).status is RecordStatus.under_replicated
    report = repair_all(rt)
    assert report.restored == [(copy.name, "replica")]
    assert report.failed == []
    assert verify_all(rt, deep=True) == []
    with rt.db.read() as s:
        assert get_record(s, record.archive_code).status is RecordStatus.processing


def test_the_rewrap_job_walks_in_slices_and_content_stays(rt: Runtime) -> None:
    codes = [
        ingest(
            rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system", force=True
        ).archive_code
        for _ in range(3)
    ]
    primary, replica = _stores(rt)
    before = [_sha(f) for f in _files(primary) + _files(replica)]
    keyring = rotate_keyring(rt, actor="system")
    assert objects_left_to_rewrap(rt, keyring) == 3
    with rt.db.write() as s:
        rt.enqueue(
            s,
            KEYS_REWRAP,
            {"key_id": keyring.current.id, "limit": 2},
            key="rewrap-test",
            actor="system",
        )
    _run_jobs(rt)  # the slice of 2, then the one it queued, then the sidecars
    assert objects_left_to_rewrap(rt, keyring) == 0
    with rt.db.read() as s:
        slices = list_events(s, action=KEYS_REWRAP)
        assert not list_jobs(s, state=JobState.dead)
    assert [e.detail["rewrapped"] for e in slices] == [2, 1]
    assert set(before) <= {_sha(f) for f in _files(primary) + _files(replica)}  # + sidecars
    for code in codes:
        assert _read(rt, code) == SCAN.read_bytes()


def _sidecar(rt: Runtime, record_id: int) -> str:
    with rt.db.read() as s:
        objs = objects_of_record(s, record_id)
    [sidecar] = [o.id for o in objs if o.role is ObjectRole.sidecar and not o.is_shredded]
    return sidecar


def test_a_rewritten_sidecar_takes_a_new_id_and_the_old_one_goes(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    _run_jobs(rt)  # the sidecar
    old = _sidecar(rt, record.id)
    keyring = rotate_keyring(rt, actor="system")
    primary, replica = _stores(rt)
    assert rewrite_sidecar(rt, record.id, keyring, actor="system")
    new = _sidecar(rt, record.id)
    assert new != old
    with rt.db.read() as s:
        gone = get_object(s, old)
        assert gone.is_shredded
        assert gone.copies == ()
        assert get_object(s, new).key_id == keyring.current.id
    assert not [p for p in _files(primary) + _files(replica) if p.name == old]
    with rt.vault.read_sealed(new) as reader:
        assert json.loads(b"".join(reader))["archive_code"] == record.archive_code
    assert verify_all(rt, deep=True) == []

    # the old copies cannot be deleted from one store: the rewrite stands, and it is logged
    [stuck] = [p for p in _files(primary) if p.name == new]
    stuck.unlink()
    stuck.mkdir()  # a directory where the copy was: unlink fails
    (stuck / "x").write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="api.services.jobs"):
        assert rewrite_sidecar(rt, record.id, rotate_keyring(rt, actor="system"), actor="system")
    assert _sidecar(rt, record.id) not in (old, new)
    events = [getattr(r, "event", None) for r in caplog.records if r.name == "api.services.jobs"]
    assert events == ["sidecar_old_copies_left"]
    assert not [p for p in _files(replica) if p.name == new]  # the other store's copy went


def test_a_process_started_before_a_rotation_still_reads(rt: Runtime) -> None:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    assert rt.vault.keyring is not None  # this process has loaded the keyring
    other = Runtime(rt.settings)
    try:
        keyring = rotate_keyring(other, actor="system")
        rewrap_all(other, keyring, actor="system")
    finally:
        other.close()
    assert _read(rt, record.archive_code) == SCAN.read_bytes()


def test_a_process_started_before_a_rotation_writes_under_the_new_key(rt: Runtime) -> None:
    ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    _run_jobs(rt)
    assert rt.vault.keyring is not None
    old_id = rt.vault.keyring.current.id
    other = Runtime(rt.settings)  # `dangan keys rotate` + `keys retire` in another process
    try:
        keyring = rotate_keyring(other, actor="system")
        rewrap_all(other, keyring, actor="system")
        retire_key(other, old_id, actor="system")
    finally:
        other.close()

    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system", force=True)
    _run_jobs(rt)  # its sidecar, written by this (older) process too
    fresh = Runtime(rt.settings)  # after a restart
    try:
        with fresh.db.read() as s:
            assert count_objects_by_key(s) == {keyring.current.id: 4}
        assert _read(fresh, record.archive_code) == SCAN.read_bytes()
    finally:
        fresh.close()


def test_the_current_key_cannot_be_retired(rt: Runtime) -> None:
    assert rt.vault.keyring is not None
    with pytest.raises(KeyringError, match="current"):
        retire_key(rt, rt.vault.keyring.current.id, actor="system")


def test_concurrent_rotations_keep_every_new_key(rt: Runtime) -> None:
    path = rt.settings.vault.keyring_path
    assert path is not None
    runtimes = [Runtime(rt.settings) for _ in range(4)]
    barrier = threading.Barrier(len(runtimes))

    def rotate(runtime: Runtime) -> str:
        barrier.wait()
        return rotate_keyring(runtime, actor="system").current.id

    try:
        with ThreadPoolExecutor(len(runtimes)) as pool:
            made = list(pool.map(rotate, runtimes))  # re-raises a thread's error
    finally:
        for r in runtimes:
            r.close()
    saved = load_keyring(path)
    assert set(made) <= set(saved.key_ids)
    assert len(saved.key_ids) == 1 + len(runtimes)
    assert saved.current.id in made
    lock = path.with_name(f"{path.name}.lock")
    assert lock.stat().st_mode & 0o777 == 0o600
