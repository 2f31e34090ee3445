"""An archive that switches to 国密 (SM4-GCM content, SM3 fixity and audit hashes) part-way:
what was written before keeps its AES-256-GCM / SHA-256, what comes after is SM4 / SM3, and
`dangan verify --deep`, reading, and `dangan audit verify` come back clean for both kinds;
a flipped byte in an SM4 copy and an altered SM3 audit event are found (issue #10)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api.services import Runtime, ingest, initialize
from api.services.fixity import verify_all
from api.services.reading import open_original
from catalog import NewRecord, get_object, get_record, objects_of_record, verify_chain
from dangan.config import CryptoSettings, Settings
from dangan.errors import ConflictError
from tests.corpus import CORPUS, scan
from tests.queue import VAULT_KINDS, drain
from tests.tampering import tamper_audit

SCAN = CORPUS / "IMG_3214.png"
TYPE = "新生入学"
SM = CryptoSettings(digest="sm3", cipher="sm4-gcm")


@pytest.fixture
def runtimes(settings: Settings) -> Iterator[tuple[Runtime, Runtime]]:
    """The same archive opened before the switch (defaults) and after it (SM3 + SM4)."""
    scan(SCAN.name)  # skips locally, fails in CI, when the corpus is missing
    before = Runtime(settings)
    initialize(before, admin="root", password="correct-horse-battery")
    after = Runtime(settings.model_copy(update={"crypto": SM}))
    yield before, after
    before.close()
    after.close()


def _suite_byte(rt: Runtime, object_id: str) -> int:
    root = rt.settings.vault.primary.path
    assert root is not None
    stored = (root / object_id[:2] / object_id[2:4] / object_id).read_bytes()
    at = 0 if stored[:8] != b"DANGANS1" else 10 + int.from_bytes(stored[8:10], "big")
    assert stored[at : at + 6] == b"DANGAN"
    return stored[at + 7]


def _copy_path(rt: Runtime, store: str, object_id: str) -> Path:
    root = rt.settings.vault.primary.path if store == "primary" else rt.settings.vault.replica.path
    assert root is not None
    return root / object_id[:2] / object_id[2:4] / object_id


def test_an_archive_holding_both_kinds_verifies_clean(runtimes: tuple[Runtime, Runtime]) -> None:
    before, after = runtimes
    data = SCAN.read_bytes()
    old = ingest(before, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    drain(before, VAULT_KINDS)
    # The twin is found across the switch: its SHA-256 is looked for as well as its SM3.
    with pytest.raises(ConflictError):
        ingest(after, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    new = ingest(after, SCAN, NewRecord(business_type=TYPE, year=2024), actor="system", force=True)
    drain(after, VAULT_KINDS)

    with after.db.read() as s:
        old_objects = objects_of_record(s, get_record(s, old.archive_code).id)
        new_objects = objects_of_record(s, get_record(s, new.archive_code).id)
    assert {o.digest_algorithm for o in old_objects} == {"sha256"}
    assert {o.digest_algorithm for o in new_objects} == {"sm3"}
    assert {_suite_byte(after, o.id) for o in old_objects} == {1}
    assert {_suite_byte(after, o.id) for o in new_objects} == {2}  # SM4-GCM, SM3
    [original] = [o for o in new_objects if o.role.value == "original"]
    assert original.plaintext_sha256 == hashlib.new("sm3", data).hexdigest()
    stored = _copy_path(after, "replica", original.id).read_bytes()
    assert original.copy_in("replica").ciphertext_sha256 == hashlib.new("sm3", stored).hexdigest()  # type: ignore[union-attr]

    # Both kinds read, and verify clean from either configuration, keyless and deep.
    for rt in (before, after):
        for code in (old.archive_code, new.archive_code):
            assert b"".join(open_original(rt, code, actor="system").chunks) == data
        assert verify_all(rt) == []
        assert verify_all(rt, deep=True) == []

    with after.db.read() as s:
        report = verify_chain(s)
        algorithms = s.execute(text("SELECT digest_algorithm FROM audit_events ORDER BY id"))
        kinds = [row[0] for row in algorithms]
    assert report.ok, report.problems
    assert kinds[0] == "sha256"  # the events of the first record, before the switch
    assert "sm3" in kinds


def test_a_tampered_sm4_copy_and_sm3_event_are_found(runtimes: tuple[Runtime, Runtime]) -> None:
    before, after = runtimes
    ingest(before, SCAN, NewRecord(business_type=TYPE, year=2023), actor="system")
    new = ingest(after, SCAN, NewRecord(business_type=TYPE, year=2024), actor="system", force=True)
    with after.db.read() as s:
        [original] = [
            o
            for o in objects_of_record(s, get_record(s, new.archive_code).id)
            if o.role.value == "original"
        ]
    path = _copy_path(after, "primary", original.id)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    [problem] = verify_all(after)
    assert (problem.object_id, problem.store, problem.kind) == (original.id, "primary", "bad")
    assert "SM3" in problem.reason
    with after.db.read() as s:
        assert get_object(s, original.id).copy_in("replica").state.value == "ok"  # type: ignore[union-attr]

    with after.db.read() as s:
        sm3_id = s.execute(
            text("SELECT min(id) FROM audit_events WHERE digest_algorithm = 'sm3'")
        ).scalar_one()
        last_sha_id = s.execute(
            text("SELECT max(id) FROM audit_events WHERE digest_algorithm = 'sha256'")
        ).scalar_one()
    # Altering an SM3 event's content is found at that event...
    sql = "UPDATE audit_events SET actor = '{}' WHERE id = {}"
    tamper_audit(after.db, sql.format("mallory", sm3_id))
    with after.db.read() as s:
        assert [p.event_id for p in verify_chain(s).problems] == [sm3_id]
    tamper_audit(after.db, sql.format("system", sm3_id))
    with after.db.read() as s:
        assert verify_chain(s).ok
    # ...and so is relabelling an event's digest, either way.
    for event_id, label, back in ((sm3_id, "sha256", "sm3"), (last_sha_id, "sm3", "sha256")):
        relabel = "UPDATE audit_events SET digest_algorithm = '{}' WHERE id = {}"
        tamper_audit(after.db, relabel.format(label, event_id))
        with after.db.read() as s:
            assert [p.event_id for p in verify_chain(s).problems] == [event_id]
        tamper_audit(after.db, relabel.format(back, event_id))
    with after.db.read() as s:
        assert verify_chain(s).ok
