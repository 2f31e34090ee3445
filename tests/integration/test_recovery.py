"""Disaster recovery on the embedded default (SQLite, two fs stores) with a real scan: after
intake and the sidecar job, a vault built from the two store directories and the keyring file
alone (no catalog) finds every record's fields and recovers its exact original, also after a
key rotation whose old key has been retired."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.services import Runtime, ingest, initialize
from api.services.fixity import verify_all
from api.services.jobs import KEYS_REWRAP
from api.services.keys import objects_left_to_rewrap, retire_key, rotate_keyring
from api.services.records import update_record
from api.services.recovery import SidecarDoc, read_sidecars, recover_original
from catalog import (
    JobState,
    NewRecord,
    ObjectRole,
    Role,
    count_objects_by_key,
    create_user,
    list_jobs,
    objects_of_record,
)
from dangan.config import Settings
from dangan.errors import CorruptDataError, KeyringError
from tests.corpus import CORPUS, scan
from tests.queue import VAULT_KINDS, drain
from vault import FsBackend, Vault, WrappedKey, load_keyring

SCAN = CORPUS / "IMG_3214.png"
TYPE = "新生入学"


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    scan(SCAN.name)  # skips locally, fails in CI, when the corpus is missing
    runtime = Runtime(settings)
    initialize(runtime, admin="root", password="correct-horse-battery")
    yield runtime
    runtime.close()


def _run_jobs(rt: Runtime) -> None:
    drain(rt, VAULT_KINDS)
    with rt.db.read() as s:
        assert not list_jobs(s, state=JobState.dead)


def _bare_vault(rt: Runtime) -> Vault:
    """The two store directories and the keyring file, nothing else of dangan's state."""
    v = rt.settings.vault
    assert v.primary.path is not None
    assert v.replica.path is not None
    assert v.keyring_path is not None
    return Vault(FsBackend(v.primary.path), FsBackend(v.replica.path), load_keyring(v.keyring_path))


def _recover(rt: Runtime, tmp_path: Path) -> dict[str, SidecarDoc]:
    vault = _bare_vault(rt)
    docs = {d.archive_code: d for d in read_sidecars(vault)}
    for code, doc in docs.items():
        out = recover_original(vault, doc, tmp_path / f"{code}.png")
        assert out.read_bytes() == SCAN.read_bytes()
    return docs


def test_the_stores_and_the_keyring_alone_recover_records(rt: Runtime, tmp_path: Path) -> None:
    record = ingest(
        rt,
        SCAN,
        NewRecord(
            business_type=TYPE,
            year=2023,
            title="入学登记表",
            student_no="20230001",
            student_class="高一(3)班",
        ),
        actor="system",
    )
    _run_jobs(rt)  # the sidecar
    docs = _recover(rt, tmp_path)
    assert list(docs) == [record.archive_code]
    doc = docs[record.archive_code]
    assert (doc.year, doc.business_type, doc.serial) == (2023, TYPE, record.serial)
    assert (doc.title, doc.student_no, doc.student_class) == ("入学登记表", "20230001", "高一(3)班")
    assert doc.security_class == record.security_class.value
    with rt.db.read() as s:
        objs = {o.role: o for o in objects_of_record(s, record.id)}
    original, sidecar = objs[ObjectRole.original], objs[ObjectRole.sidecar]
    assert doc.sidecar_id == sidecar.id
    [carried] = doc.objects
    assert carried.object_id == original.id
    assert carried.key_id == original.key_id
    assert base64.b64decode(carried.wrapped_key) == original.wrapped_key
    assert (carried.size, carried.plaintext_sha256) == (
        SCAN.stat().st_size,
        hashlib.sha256(SCAN.read_bytes()).hexdigest(),
    )
    assert {n: (c.size, c.ciphertext_sha256) for n, c in carried.copies.items()} == {
        c.store: (c.size, c.ciphertext_sha256) for c in original.copies
    }
    # the catalog's own way still reads the (sealed) sidecar
    assert sidecar.wrapped_key is not None
    with rt.vault.read(sidecar.id, WrappedKey.from_bytes(sidecar.wrapped_key)) as reader:
        assert b"".join(reader).startswith(b"{")


def test_a_corrected_class_reaches_the_sidecar(rt: Runtime, tmp_path: Path) -> None:
    record = ingest(
        rt,
        SCAN,
        NewRecord(business_type=TYPE, year=2023, student_class="高一(3)班"),
        actor="system",
    )
    _run_jobs(rt)
    with rt.db.write() as s:
        supervisor = create_user(
            s, name="zhao", role=Role.supervisor, password="x" * 12, actor="root"
        )
    update_record(rt, record.archive_code, supervisor, {"student_class": "高一(4)班"})
    _run_jobs(rt)
    docs = _recover(rt, tmp_path)
    assert docs[record.archive_code].student_class == "高一(4)班"


def test_a_sidecar_written_before_the_class_was_a_field_still_reads() -> None:
    doc = {
        "sidecar_id": "0" * 32,
        "format": "dangan-sidecar",
        "version": 2,
        "archive_code": f"2019-{TYPE}-001",
        "year": 2019,
        "business_type": TYPE,
        "serial": 1,
        "title": "",
        "student_no": None,
        "student_name": None,
        "security_class": "internal",
        "paper_location": None,
        "created_at": "2019-09-01T00:00:00+00:00",
        "objects": [],
    }
    assert SidecarDoc.model_validate(doc).student_class is None


def test_recovery_survives_rotation_and_retiring_the_old_key(rt: Runtime, tmp_path: Path) -> None:
    codes = [
        ingest(
            rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system", force=True
        ).archive_code
        for _ in range(3)
    ]
    _run_jobs(rt)  # the sidecars, under the first key
    old = _bare_vault(rt).keyring
    assert old is not None
    old_id = old.current.id
    with pytest.raises(KeyringError):  # still in use
        retire_key(rt, old_id, actor="system")

    keyring = rotate_keyring(rt, actor="system")
    with rt.db.write() as s:
        rt.enqueue(
            s,
            KEYS_REWRAP,
            {"key_id": keyring.current.id, "limit": 2},
            key="rewrap-test",
            actor="system",
        )
    _run_jobs(rt)
    assert objects_left_to_rewrap(rt, keyring) == 0
    with rt.db.read() as s:
        assert count_objects_by_key(s) == {keyring.current.id: 6}
    retire_key(rt, old_id, actor="system")

    docs = _recover(rt, tmp_path)
    assert sorted(docs) == sorted(codes)
    for doc in docs.values():
        assert {o.key_id for o in doc.objects} == {keyring.current.id}
    # the catalog's hashes follow the rewritten sidecars: deep verify finds nothing
    assert verify_all(rt, deep=True) == []


def test_a_damaged_sidecar_is_reported_and_a_damaged_original_leaves_no_file(
    rt: Runtime, tmp_path: Path
) -> None:
    records = [
        ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system", force=True)
        for _ in range(2)
    ]
    _run_jobs(rt)
    with rt.db.read() as s:
        objs = [{o.role: o for o in objects_of_record(s, r.id)} for r in records]
    bad_sidecar = objs[0][ObjectRole.sidecar].id
    bad_original = objs[1][ObjectRole.original].id
    for root in (rt.settings.vault.primary.path, rt.settings.vault.replica.path):
        assert root is not None
        for oid in (bad_sidecar, bad_original):
            [path] = root.rglob(oid)
            data = bytearray(path.read_bytes())
            data[-1] ^= 0x01
            path.write_bytes(bytes(data))

    vault = _bare_vault(rt)
    with pytest.raises(CorruptDataError):
        list(read_sidecars(vault))
    errors: list[str] = []
    [doc] = read_sidecars(vault, on_error=lambda oid, exc: errors.append(oid))
    assert errors == [bad_sidecar]
    assert doc.archive_code == records[1].archive_code
    out = tmp_path / "out.png"
    with pytest.raises(CorruptDataError):
        recover_original(vault, doc, out)
    assert list(tmp_path.glob("*out.png*")) == []


def test_a_flipped_magic_byte_in_the_primary_sidecar_does_not_hide_the_record(
    rt: Runtime, tmp_path: Path
) -> None:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    _run_jobs(rt)
    with rt.db.read() as s:
        [sidecar] = [o for o in objects_of_record(s, record.id) if o.role is ObjectRole.sidecar]
    root = rt.settings.vault.primary.path
    assert root is not None
    [path] = root.rglob(sidecar.id)
    data = bytearray(path.read_bytes())
    data[6] ^= 0x01  # b"DANGANS1" -> b"DANGANR1": the primary no longer looks sealed
    path.write_bytes(bytes(data))

    errors: list[str] = []
    docs = list(read_sidecars(_bare_vault(rt), on_error=lambda oid, exc: errors.append(oid)))
    assert errors == []
    assert [d.archive_code for d in docs] == [record.archive_code]
    assert recover_original(_bare_vault(rt), docs[0], tmp_path / "out.png").read_bytes() == (
        SCAN.read_bytes()
    )


def test_a_recovered_original_is_private_and_a_symlink_is_not_followed(
    rt: Runtime, tmp_path: Path
) -> None:
    ingest(rt, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    _run_jobs(rt)
    [doc] = read_sidecars(_bare_vault(rt))
    dest = tmp_path / "recovered"
    dest.mkdir()
    victim = dest / "victim"
    victim.write_bytes(b"untouched")
    (dest / ".out.png.partial").symlink_to(victim)  # the old, predictable name
    old = os.umask(0o022)
    try:
        out = recover_original(_bare_vault(rt), doc, dest / "out.png")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes() == SCAN.read_bytes()
    assert victim.read_bytes() == b"untouched"
    assert sorted(p.name for p in dest.iterdir()) == [".out.png.partial", "out.png", "victim"]
