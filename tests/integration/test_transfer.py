"""Open transfer packages (docs/transfer.md): the test world's archive exported as a BagIt bag,
checked by the real ``bagit.py --validate``, and imported into a fresh archive, where every
record's bytes, metadata and OCR text must match; who may export what; a damaged bag refused
with nothing left behind; the audit events each step owes.

The source archive is ``tests/integration/api_world.py``'s, built (and OCR'd) once per session.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.cli import main
from api.services import Runtime, initialize
from api.services.bags import make_bag
from api.services.fourprop import Outcome, Selection, run_check
from api.services.pipeline import read_ocr_text
from api.services.reading import open_original
from api.services.search import search_records
from api.services.transfer import ExportSelection, export_bag
from api.services.transfer_import import import_bag
from catalog import (
    ObjectRole,
    RecordStatus,
    Role,
    UserInfo,
    create_user,
    get_business_type,
    get_record,
    get_user,
    list_events,
    list_pages,
    objects_of_record,
    record_progress,
    verify_chain,
)
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from tests.integration.api_world import PASSWORD, _runtime, _template, run_queue, user_name

BAGIT_PY = str(Path(sys.executable).with_name("bagit.py"))


@dataclass
class Source:
    rt: Runtime
    internal: str
    contract: str

    def user(self, role: Role) -> UserInfo:
        with self.rt.db.read() as session:
            return get_user(session, user_name(role))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    template, internal, contract = _template()
    data = tmp_path_factory.mktemp("source") / "data"
    shutil.copytree(template, data)
    rt = _runtime(data)
    try:
        yield Source(rt, internal, contract)
    finally:
        rt.close()


@pytest.fixture(scope="module")
def bag(source: Source, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every record, exported by the director through the command line."""
    out = tmp_path_factory.mktemp("bags") / "all"
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("DANGAN_")]:
            mp.delenv(name)
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "--data-dir",
                    str(source.rt.settings.data_dir),
                    "export",
                    "--all",
                    "--out",
                    str(out),
                    "--organization",
                    "某某中学学籍档案室",
                    "--as",
                    user_name(Role.director),
                ]
            )
    assert exit_info.value.code == 0
    return out


def _fresh(path: Path) -> Runtime:
    rt = _runtime(path)
    initialize(rt, admin=user_name(Role.admin), password=PASSWORD)
    with rt.db.write() as session:
        for role in (Role.director, Role.clerk):
            create_user(session, name=user_name(role), role=role, password=PASSWORD, actor="test")
    return rt


def _user(rt: Runtime, role: Role) -> UserInfo:
    with rt.db.read() as session:
        return get_user(session, user_name(role))


def _bytes(rt: Runtime, code: str, role: ObjectRole) -> bytes:
    return b"".join(open_original(rt, code, actor="test", role=role).chunks)


def _stored_objects(rt: Runtime) -> set[str]:
    return {oid for store in rt.vault.stores.values() for oid in store.list()}


def _record_id(rt: Runtime, code: str) -> int:
    with rt.db.read() as session:
        return get_record(session, code).id


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, BAGIT_PY, "--validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _rebag(path: Path) -> None:
    """Make ``path`` a valid bag again around its (edited) payload, SM3 manifests included."""
    payload = path.parent / f"{path.name}.payload"
    (path / "data").rename(payload)
    shutil.rmtree(path)
    make_bag(payload, {"Source-Organization": "test"})
    payload.rename(path)


def test_the_export_is_a_valid_bag_with_sha256_and_sm3(source: Source, bag: Path) -> None:
    done = _validate(bag)
    assert done.returncode == 0, done.stderr
    assert "is valid" in done.stderr
    for name in ("manifest-sha256.txt", "manifest-sm3.txt"):
        lines = (bag / name).read_text(encoding="utf-8").splitlines()
        # transfer.json, the check's 3 reports, and per record: original, access PDF,
        # 2 metadata, OCR text, audit
        assert len(lines) == 1 + 3 + 2 * 6
    assert {p.name for p in bag.iterdir()} == {
        "bagit.txt",
        "bag-info.txt",
        "data",
        "manifest-sha256.txt",
        "manifest-sm3.txt",
        "tagmanifest-sha256.txt",
        "tagmanifest-sm3.txt",
    }
    record = bag / "data" / "records" / source.internal
    assert sorted(p.relative_to(record).as_posix() for p in record.rglob("*") if p.is_file()) == [
        "access.pdf",
        "audit.jsonl",
        "metadata.json",
        "metadata.xml",
        "ocr/0001.txt",
        "original.png",
    ]
    # The SM3 manifest holds real SM3 digests (GB/T 32905), not copies of the SHA-256 ones.
    sm3 = dict(
        reversed(line.split(maxsplit=1))
        for line in (bag / "manifest-sm3.txt").read_text(encoding="utf-8").splitlines()
    )
    original = record / "original.png"
    expected = hashlib.new("sm3", original.read_bytes()).hexdigest()
    assert sm3[f"data/records/{source.internal}/original.png"] == expected
    info = (bag / "bag-info.txt").read_text(encoding="utf-8")
    assert "Source-Organization: 某某中学学籍档案室" in info
    assert "Dangan-Records: 2" in info
    assert "Payload-Oxum: " in info
    # The four-property check ran before the transfer; its report travels in the bag.
    check = json.loads((bag / "data" / "check" / "fourprop.json").read_text(encoding="utf-8"))
    assert check["occasion"] == "transfer"
    assert {r["archive_code"] for r in check["records"]} == {source.internal, source.contract}
    assert f"Dangan-Check-Outcome: {check['outcome']}" in info
    # Unencrypted: the original in the bag is the scan as it was ingested.
    assert original.read_bytes() == _bytes(source.rt, source.internal, ObjectRole.original)
    meta = json.loads((record / "metadata.json").read_text(encoding="utf-8"))
    assert meta["student_name"] == "万沐"
    assert meta["retention"] == "永久"
    assert "<student_name>万沐</student_name>" in (record / "metadata.xml").read_text("utf-8")
    events = [json.loads(x) for x in (record / "audit.jsonl").read_text("utf-8").splitlines()]
    assert events[0]["action"] == "record.create"
    assert any(e["detail"].get("role") == "transfer" for e in events)  # this export's own read


def test_the_export_is_audited_as_a_read_of_each_record(source: Source, bag: Path) -> None:
    with source.rt.db.read() as session:
        exports = list_events(session, action="transfer.export", limit=100)
        reads = list_events(session, action="record.read_content", limit=1000)
    ours = [e for e in exports if e.outcome == "ok" and e.actor == user_name(Role.director)]
    assert ours
    assert ours[0].detail["records"] == 2
    export_id = ours[0].target.removeprefix("export:") if ours[0].target else ""
    read_targets = sorted(e.target or "" for e in reads if e.detail.get("export_id") == export_id)
    assert read_targets == sorted(f"record:{c}" for c in (source.internal, source.contract))
    assert "某" not in json.dumps(ours[0].detail, ensure_ascii=False)  # no names in the trail


def test_a_fresh_archive_takes_the_bag_back_exactly(
    source: Source, bag: Path, tmp_path: Path
) -> None:
    rt = _fresh(tmp_path / "fresh")
    try:
        report = import_bag(rt, bag, _user(rt, Role.director))
        assert sorted(report.records) == sorted([source.internal, source.contract])
        for code in report.records:
            with source.rt.db.read() as s:
                was = get_record(s, code)
                was_progress = record_progress(s, was.id)
                was_pages = list_pages(s, was.id)
                was_retention = get_business_type(s, was.business_type).retention
            with rt.db.read() as s:
                now = get_record(s, code)
                now_progress = record_progress(s, now.id)
                now_pages = list_pages(s, now.id)
                now_retention = get_business_type(s, now.business_type).retention
                roles = {o.role for o in objects_of_record(s, now.id) if not o.is_shredded}
            for field in (
                "archive_code",
                "year",
                "business_type",
                "serial",
                "title",
                "student_no",
                "student_name",
                "student_class",
                "security_class",
                "paper_location",
                "content_type",
                "size",
                "plaintext_sha256",
                "page_count",
                "upload_name",
                "created_at",
            ):
                assert getattr(now, field) == getattr(was, field), field
            assert now_retention == was_retention
            assert now_progress.processed_at == was_progress.processed_at
            assert now_progress.stage == was_progress.stage
            assert [(p.number, p.state, p.rotation, p.skew, p.confidence) for p in now_pages] == [
                (p.number, p.state, p.rotation, p.skew, p.confidence) for p in was_pages
            ]
            assert now.status is RecordStatus.archived
            assert ObjectRole.sidecar in roles
            for role in (ObjectRole.original, ObjectRole.access_copy):
                assert _bytes(rt, code, role) == _bytes(source.rt, code, role)
            texts = [p.text if p else None for p in read_ocr_text(rt, now.id, actor="test")]
            was_texts = [p.text if p else None for p in read_ocr_text(source.rt, was.id, actor="t")]
            assert texts == was_texts
            assert any(t for t in texts)
        # Searchable at once, with the bag's text; the contract still for the director alone.
        word = read_ocr_text(rt, _record_id(rt, source.internal), actor="t")[0]
        assert word is not None
        term = next(w for w in word.text.split() if len(w) >= 2)
        hits = search_records(rt, f'"{term}"', user=_user(rt, Role.director), snippets=False)
        assert source.internal in {h.record.archive_code for h in hits.hits}
        with rt.db.read() as session:
            imports = list_events(session, action="transfer.import", limit=10)
            created = list_events(session, action="record.import", limit=10)
            assert verify_chain(session).ok
        assert len(imports) == 1
        assert imports[0].detail["records"] == 2
        assert imports[0].actor == user_name(Role.director)
        assert sorted(e.target or "" for e in created) == sorted(
            f"record:{c}" for c in report.records
        )
        run_queue(rt)  # the queued sidecar and index jobs find nothing left to do
        # Taking the same bag again refuses it whole, naming the codes taken.
        before = _stored_objects(rt)
        with pytest.raises(ConflictError, match="taken in this archive"):
            import_bag(rt, bag, _user(rt, Role.director))
        assert _stored_objects(rt) == before
    finally:
        rt.close()


def test_contracts_are_exported_by_a_director_alone(source: Source, tmp_path: Path) -> None:
    auditor = source.user(Role.auditor)
    report = export_bag(
        source.rt,
        ExportSelection(everything=True),
        tmp_path / "auditor",
        auditor,
        organization="test",
    )
    assert report.records == (source.internal,)  # the contract does not exist for an auditor
    assert not (tmp_path / "auditor" / "data" / "records" / source.contract).exists()
    # Named explicitly, a contract answers exactly as a code that names nothing.
    with pytest.raises(NotFoundError) as hidden:
        export_bag(
            source.rt,
            ExportSelection(codes=(source.contract,)),
            tmp_path / "a2",
            auditor,
            organization="test",
        )
    with pytest.raises(NotFoundError) as missing:
        export_bag(
            source.rt,
            ExportSelection(codes=("2023-合同-999",)),
            tmp_path / "a3",
            auditor,
            organization="test",
        )
    assert str(hidden.value) == str(missing.value)
    assert not (tmp_path / "a2").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["auditor"]  # no partial bag left behind
    # A clerk may not export at all; the refusal is audited.
    with pytest.raises(PermissionDeniedError):
        export_bag(
            source.rt,
            ExportSelection(everything=True),
            tmp_path / "clerk",
            source.user(Role.clerk),
            organization="test",
        )
    with source.rt.db.read() as session:
        denied = list_events(session, actor=user_name(Role.clerk), limit=1000)
        contract_denials = list_events(
            session, actor=user_name(Role.auditor), action="record.read_content", limit=1000
        )
    assert any(e.action == "export" and e.outcome == "denied" for e in denied)
    assert any(
        e.outcome == "denied" and e.target == f"record:{source.contract}" for e in contract_denials
    )
    # The director exports the contract by its code.
    report = export_bag(
        source.rt,
        ExportSelection(codes=(source.contract,)),
        tmp_path / "director",
        source.user(Role.director),
        organization="test",
    )
    assert report.records == (source.contract,)


def test_a_clerk_may_not_import_a_contract(bag: Path, tmp_path: Path) -> None:
    rt = _fresh(tmp_path / "fresh")
    try:
        with pytest.raises(PermissionDeniedError):
            import_bag(rt, bag, _user(rt, Role.clerk))
        with rt.db.read() as session:
            assert not list_events(session, action="record.import", limit=10)
        assert not _stored_objects(rt)
    finally:
        rt.close()


@pytest.mark.parametrize("damage", ["flip_byte", "missing_file", "sm3_digest"])
def test_a_damaged_bag_is_refused_with_nothing_left_behind(
    source: Source, bag: Path, tmp_path: Path, damage: str
) -> None:
    copy = tmp_path / "bag"
    shutil.copytree(bag, copy)
    original = copy / "data" / "records" / source.internal / "original.png"
    if damage == "flip_byte":
        data = bytearray(original.read_bytes())
        data[len(data) // 2] ^= 0x01
        original.write_bytes(bytes(data))
    elif damage == "missing_file":
        (copy / "data" / "records" / source.contract / "ocr" / "0001.txt").unlink()
    else:
        # bagit.py does not read SM3 manifests: only dangan's own check sees this one.
        lines = (copy / "tagmanifest-sm3.txt").read_text(encoding="utf-8").splitlines()
        digest, name = lines[0].split(maxsplit=1)
        lines[0] = f"{'0' * len(digest)} {name}"
        (copy / "tagmanifest-sm3.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert _validate(copy).returncode == 0
    if damage != "sm3_digest":
        assert _validate(copy).returncode == 1
    rt = _fresh(tmp_path / "fresh")
    try:
        with pytest.raises(CorruptDataError):
            import_bag(rt, copy, _user(rt, Role.director))
        with rt.db.read() as session:
            assert not list_events(session, action="record.import", limit=10)
        assert not _stored_objects(rt)
    finally:
        rt.close()


def test_a_failure_after_the_content_is_stored_takes_it_all_back(
    source: Source, bag: Path, tmp_path: Path
) -> None:
    """The catalog refuses the second record (a title too long) after both records' content
    went into the stores: no record and no object stays."""
    copy = tmp_path / "bag"
    shutil.copytree(bag, copy)
    meta_path = copy / "data" / "records" / source.internal / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["title"] = "长" * 501
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    _rebag(copy)
    assert _validate(copy).returncode == 0
    rt = _fresh(tmp_path / "fresh")
    try:
        with pytest.raises(InvalidInputError, match="title has at most 500"):
            import_bag(rt, copy, _user(rt, Role.director))
        with rt.db.read() as session:
            assert not list_events(session, action="record.import", limit=10)
            with pytest.raises(NotFoundError):
                get_record(session, source.contract)
        assert not _stored_objects(rt)
    finally:
        rt.close()


def test_an_imported_record_passes_the_authenticity_of_its_history(
    source: Source, bag: Path, tmp_path: Path
) -> None:
    """An imported record's audited creation here is its ``record.import`` event (its own
    history stays in the bag): the four-property check's A4 must accept it."""
    rt = _fresh(tmp_path / "fresh")
    try:
        import_bag(rt, bag, _user(rt, Role.director))
        report = run_check(rt, Selection(), user=None, actor="test")
        assert sorted(r.archive_code for r in report.records) == sorted(
            [source.internal, source.contract]
        )
        for record in report.records:
            a4 = next(i for i in record.items if i.rule == "A4")
            assert a4.outcome is Outcome.passed, a4.detail
    finally:
        rt.close()
