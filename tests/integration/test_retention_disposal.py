"""Disposition on a real archive (fs stores, SQLite): holds stop everyone, disposal leaves
nothing readable in any store even with the keyring (only the tombstone sidecar, which holds
no key and no content), and the certificate proves it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import cli
from api.services import Runtime, ingest, initialize
from api.services import retention as svc
from api.services.disposal import destroy_record_content
from api.services.reading import open_original
from api.services.recovery import TombstoneDoc, read_sidecars, recover_original
from api.services.vault import build_vault
from catalog import (
    NewRecord,
    ProposalState,
    RecordInfo,
    RecordStatus,
    Role,
    UserInfo,
    approve_proposal,
    create_user,
    get_record,
    get_user,
    list_events,
    objects_of_record,
    run_one,
)
from dangan.config import Settings
from dangan.errors import ConflictError, NotFoundError, PermissionDeniedError
from retention import verify_certificate
from tests.corpus import scan

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PASSWORD = "correct-horse-battery"
ROLES = {
    "zhang": Role.director,
    "wang": Role.supervisor,
    "li": Role.clerk,
    "shen": Role.auditor,
    "root": Role.admin,
}


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    scan("doc_6555.pdf")
    runtime = Runtime(settings)
    initialize(runtime, admin="root", password=PASSWORD)
    with runtime.db.write() as s:
        for name, role in ROLES.items():
            if name != "root":
                create_user(s, name=name, role=role, password=PASSWORD, actor="root")
    yield runtime
    runtime.close()


def _users(rt: Runtime) -> dict[str, UserInfo]:
    with rt.db.read() as s:
        return {name: get_user(s, name) for name in ROLES}


def _archive(rt: Runtime, count: int) -> list[RecordInfo]:
    records = [
        ingest(
            rt,
            scan("doc_6555.pdf"),
            NewRecord(business_type="会议纪要", year=2010, student_no=f"S{n}", title="会议纪要"),
            actor="root",
            force=True,
        )
        for n in range(count)
    ]
    while run_one(rt.db, "test", rt, lease_seconds=60) is not None:  # sidecars, OCR, index
        pass
    with rt.db.read() as s:
        assert all(get_record(s, r.archive_code).status is RecordStatus.archived for r in records)
    return records


def _files(rt: Runtime) -> list[Path]:
    roots = [rt.settings.vault.primary.path, rt.settings.vault.replica.path]
    return sorted(p for root in roots if root for p in root.rglob("*") if p.is_file())


def _readable(rt: Runtime, code: str) -> bytes:
    return b"".join(open_original(rt, code, actor="root").chunks)


def test_a_held_record_cannot_be_disposed_of_by_anyone(rt: Runtime, tmp_path: Path) -> None:
    held, free = _archive(rt, 2)
    users = _users(rt)
    run = svc.run_retention(rt, actor="root", user=users["root"], now=NOW)
    ids = {p.archive_code: p.id for p in run.scan.opened}
    assert set(ids) == {held.archive_code, free.archive_code}
    # A supervisor may place a hold; a clerk or an auditor may not.
    for name in ("li", "shen", "root"):
        with pytest.raises(PermissionDeniedError):
            svc.place(rt, reason="诉讼", actor=name, user=users[name], student_no=held.student_no)
    svc.place(rt, reason="诉讼", actor="wang", user=users["wang"], student_no=held.student_no)
    content = _readable(rt, held.archive_code)

    # The service: only directors may approve, and a director is refused by the hold.
    for name in ("li", "wang", "shen", "root"):
        with pytest.raises(PermissionDeniedError):
            svc.approve(rt, [ids[held.archive_code]], user=users[name])
    with pytest.raises(ConflictError, match="legal hold"):
        svc.approve(rt, [ids[held.archive_code], ids[free.archive_code]], user=users["zhang"])
    # The whole batch was refused: the free record is still there too.
    with rt.db.read() as s:
        assert get_record(s, free.archive_code).status is RecordStatus.archived

    # The disposal mechanism itself, for every role and for the system.
    for name in ("li", "wang", "shen", "root"):
        with pytest.raises(PermissionDeniedError):
            destroy_record_content(rt, held.archive_code, actor=name, user=users[name])
    with pytest.raises(ConflictError, match="legal hold"):
        destroy_record_content(rt, held.archive_code, actor="zhang", user=users["zhang"])
    with pytest.raises(ConflictError, match="legal hold"):
        destroy_record_content(rt, held.archive_code, actor="system")

    # The command line, as every role.
    runner = CliRunner()
    base = ["--data-dir", str(rt.settings.data_dir)]
    for name in ROLES:
        result = runner.invoke(
            cli,
            [*base, "disposition", "approve", str(ids[held.archive_code]), "--as", name],
            standalone_mode=False,
        )
        assert result.exception is not None
        expected = ConflictError if name == "zhang" else PermissionDeniedError
        assert isinstance(result.exception, expected), (name, result.exception)

    # The JSON API, as every role.
    client = TestClient(create_app(rt))
    for name in ROLES:
        form = {"username": name, "password": PASSWORD}
        token = client.post("/api/v1/auth/token", data=form).json()["access_token"]
        answer = client.post(
            "/api/v1/disposition/approve",
            json={"ids": [ids[held.archive_code]]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == (409 if name == "zhang" else 403), (name, answer.text)

    # An approval made before the hold was placed: the hold still wins at disposal time.
    with rt.db.write() as s:
        approve_proposal(s, ids[free.archive_code], actor="zhang")
    svc.place(rt, reason="审计", actor="zhang", user=users["zhang"], archive_code=free.archive_code)
    outcome = svc.finish_approved(rt, actor="zhang")
    assert outcome.withheld == [free.archive_code]
    assert outcome.disposed == []
    assert outcome.certificate is None

    assert _readable(rt, held.archive_code) == content
    assert _readable(rt, free.archive_code) == content
    with rt.db.read() as s:
        assert get_record(s, held.archive_code).status is RecordStatus.archived
        denied = [e for e in list_events(s, limit=1000) if e.outcome == "denied"]
    assert len(denied) >= 8  # every refused attempt left its trace


def test_disposal_leaves_nothing_readable_and_a_certificate_that_verifies(
    rt: Runtime, tmp_path: Path
) -> None:
    keep, gone = _archive(rt, 2)
    users = _users(rt)
    vault = build_vault(rt.settings)
    sidecars = {d.archive_code: d for d in read_sidecars(vault)}
    stolen_sidecar = sidecars[gone.archive_code]
    with rt.db.read() as s:
        doomed = [o for o in objects_of_record(s, gone.id) if not o.is_shredded]
    stolen = {p.name: p.read_bytes() for p in _files(rt) if p.name in {o.id for o in doomed}}
    assert len(stolen) == len(doomed)  # one name per object (both stores hold the same bytes)
    files_before = _files(rt)

    run = svc.run_retention(rt, actor="system", now=NOW)
    again = svc.run_retention(rt, actor="system", now=NOW)  # idempotent
    assert again.scan.opened == []
    assert len(again.scan.already_open) == 2
    ids = {p.archive_code: p.id for p in run.scan.opened}

    runner = CliRunner()
    base = ["--data-dir", str(rt.settings.data_dir)]
    out = tmp_path / "certs"
    approve = ["disposition", "approve", str(ids[gone.archive_code]), "--as", "zhang"]
    result = runner.invoke(cli, [*base, *approve, "--reason", "保管期满", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"destroyed {gone.archive_code}" in result.output

    # Nothing of it in either store but its tombstone sidecar; the other record untouched.
    names = {p.name for p in _files(rt)}
    assert not names & set(stolen)
    added = [p for p in _files(rt) if p not in files_before]
    (tombstone_id,) = {p.name for p in added}
    assert len(added) == 2  # one copy in each store
    assert _readable(rt, keep.archive_code)
    with pytest.raises((NotFoundError, ConflictError)):
        _readable(rt, gone.archive_code)
    with rt.db.read() as s:
        objs = objects_of_record(s, gone.id)
        tomb = get_record(s, gone.archive_code)
    assert [o.id for o in objs if not o.is_shredded] == [tombstone_id]
    assert all(o.wrapped_key is None for o in objs if o.id != tombstone_id)
    # The tombstone: the code, type and year stay, the student's name and the title go.
    assert (tomb.status, tomb.business_type, tomb.year) == (RecordStatus.disposed, "会议纪要", 2010)
    assert tomb.title == ""
    assert tomb.student_name is None
    # Recovery from the stores with the keyring finds its tombstone and nothing else of it,
    # and the sidecar taken before (a copy kept elsewhere) leads to no copy of the original.
    (found,) = [d for d in read_sidecars(vault) if d.archive_code == gone.archive_code]
    assert isinstance(found, TombstoneDoc)
    assert found.sidecar_id == tombstone_id
    with vault.read_sealed(tombstone_id) as reader:
        body = json.loads(b"".join(reader))
    # It holds no key and no content: no objects, no title, no name; only the tombstone row's
    # fields and the disposal.
    assert set(body) == {
        "format", "version", "kind", "archive_code", "year", "business_type", "serial",
        "security_class", "student_no", "paper_location", "created_at", "size",
        "plaintext_sha256", "pages", "status", "disposal",
    }  # fmt: skip
    assert "wrapped_key" not in json.dumps(body)
    assert body["kind"] == "tombstone"
    assert body["status"] == "disposed"
    assert body["disposal"]["proposed_by"] == "system"
    assert body["disposal"]["approved_by"] == "zhang"
    assert (body["archive_code"], body["student_no"]) == (gone.archive_code, gone.student_no)
    for doc in (found, stolen_sidecar):
        with pytest.raises((NotFoundError, ConflictError)):
            recover_original(vault, doc, tmp_path / "recovered")
    with pytest.raises(ConflictError, match="disposed of"):
        recover_original(vault, found, tmp_path / "recovered")
    assert not (tmp_path / "recovered").exists()
    # Its code is never handed out again.
    nxt = ingest(
        rt,
        scan("doc_6555.pdf"),
        NewRecord(business_type="会议纪要", year=2010),
        actor="root",
        force=True,
    )
    assert nxt.archive_code not in {keep.archive_code, gone.archive_code}

    # The certificate: JSON and PDF, both verify; the key exported verifies them too.
    files = sorted(out.iterdir())
    assert [p.suffix for p in files] == [".json", ".pdf"]
    doc = json.loads(files[0].read_text(encoding="utf-8"))
    (entry,) = doc["records"]
    assert entry["archive_code"] == gone.archive_code
    assert entry["approved_by"] == "zhang"
    assert entry["proposed_by"] == "system"
    assert entry["copies_left"] == 0
    assert doc["audit_head"]["event_id"] > 0
    with rt.db.read() as s:
        (proposal,) = svc.proposals(rt, users["zhang"], states=[ProposalState.disposed])
    assert proposal.certificate_id == doc["certificate_id"]
    # The tombstone in the stores names the certificate and its hash too.
    (found,) = [d for d in read_sidecars(vault) if d.archive_code == gone.archive_code]
    assert isinstance(found, TombstoneDoc)
    assert found.disposal.certificate_id == doc["certificate_id"]
    assert found.disposal.certificate_sha256 == hashlib.sha256(files[0].read_bytes()).hexdigest()
    key = runner.invoke(cli, [*base, "certificate", "key"])
    assert key.exit_code == 0
    pem = tmp_path / "public.pem"
    pem.write_text(key.output)
    for path in files:
        ok = runner.invoke(cli, [*base, "certificate", "verify", str(path)])
        assert ok.exit_code == 0, ok.output
        alone = runner.invoke(cli, ["certificate", "verify", str(path), "--key", str(pem)])
        assert alone.exit_code == 0, alone.output

    # Any edit fails: a flipped byte, a changed field.
    data = files[0].read_bytes()
    for at in (0, len(data) // 2, len(data) - 2):
        edited = bytearray(data)
        edited[at] ^= 0x20
        bad = tmp_path / "bad.json"
        bad.write_bytes(bytes(edited))
        assert runner.invoke(cli, [*base, "certificate", "verify", str(bad)]).exit_code == 1
    doc["records"][0]["approved_by"] = "wang"
    bad.write_text(json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    assert runner.invoke(cli, [*base, "certificate", "verify", str(bad)]).exit_code == 1
    pdf = files[1].read_bytes()
    edited = bytearray(pdf)
    edited[len(pdf) // 2] ^= 0x01
    bad_pdf = tmp_path / "bad.pdf"
    bad_pdf.write_bytes(bytes(edited))
    assert runner.invoke(cli, [*base, "certificate", "verify", str(bad_pdf)]).exit_code == 1


_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def _browser(rt: Runtime, name: str) -> TestClient:
    client = TestClient(create_app(rt))
    login = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token
    data = {"username": name, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 303
    return client


def test_the_disposition_page_for_directors(rt: Runtime) -> None:
    first, second = _archive(rt, 2)
    # The daily job proposes them (records of 2010, kept 10 years: due since 2021).
    with rt.db.write() as s:
        rt.enqueue(s, svc.RETENTION_SCAN, {}, key="retention-test", actor="system")
    while run_one(rt.db, "test", rt, lease_seconds=60) is not None:
        pass
    assert _browser(rt, "wang").get("/disposition").status_code == 403
    director = _browser(rt, "zhang")
    director.cookies.set("dangan_lang", "en")
    page = director.get("/disposition")
    assert page.status_code == 200
    assert first.archive_code in page.text
    assert second.archive_code in page.text
    assert 'href="/disposition"' in page.text  # in the navigation
    csrf = _CSRF.search(page.text)
    assert csrf
    headers = {"X-CSRF-Token": csrf.group(1)}
    listing = director.get("/api/v1/disposition").json()
    ids = {p["archive_code"]: p["id"] for p in listing}
    kept = director.post(
        "/api/v1/disposition/reject",
        json={"ids": [ids[first.archive_code]], "reason": "仍需参考"},
        headers=headers,
    )
    assert kept.json() == {"kept": [first.archive_code]}
    done = director.post(
        "/api/v1/disposition/approve", json={"ids": [ids[second.archive_code]]}, headers=headers
    )
    assert done.status_code == 200, done.text
    cert = done.json()["certificate_id"]
    page = director.get("/disposition")
    assert cert in page.text
    assert first.archive_code not in page.text
    pdf = director.get(f"/api/v1/disposition/certificates/{cert}/pdf")
    assert pdf.content.startswith(b"%PDF-")
    issued = director.get(f"/api/v1/disposition/certificates/{cert}").content
    keyring = rt.fresh_vault().keyring
    assert keyring is not None
    assert keyring.signing_key is not None
    trusted = [keyring.signing_key.public_key]
    assert verify_certificate(issued, trusted).archive_codes == [second.archive_code]
    assert verify_certificate(pdf.content, trusted).kind == "pdf"
