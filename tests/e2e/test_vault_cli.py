"""The vault as an operator drives it through ``dangan`` on the embedded default (SQLite, two
fs stores) with a real scan: ingest, get, verify, repair and key rotation, with exit codes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from catalog import open_database
from tests.corpus import CORPUS, scan
from tests.e2e.cli_archive import Run, fresh_archive

SCAN = CORPUS / "IMG_3214.png"
TYPE = "新生入学"


@pytest.fixture
def run(clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    scan(SCAN.name)  # skips locally, fails in CI, when the corpus is missing
    _run = fresh_archive(tmp_path, capsys)
    return _run


def _store(tmp_path: Path, name: str) -> Path:
    return tmp_path / "data" / "vault" / name


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _ingest(run: Run) -> str:
    result = run("ingest", str(SCAN), "--type", TYPE, "--year", "2023", "--title", "t", "--force")
    assert result.code == 0, result.err
    return result.out.strip()


def test_ingest_then_get_gives_back_the_same_bytes(run: Run, tmp_path: Path) -> None:
    code = _ingest(run)
    assert code == f"2023-{TYPE}-001"
    plain = SCAN.read_bytes()
    for name in ("primary", "replica"):
        [stored] = _files(_store(tmp_path, name)).values()
        assert plain[:256] not in stored
        assert plain[-256:] not in stored
    out = tmp_path / "out.png"
    assert run("get", code, "-o", str(out)).code == 0
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(plain).digest()
    assert not list(tmp_path.glob(".out.png.*"))  # no temp file left beside it


@pytest.mark.parametrize("damage", ["flip a byte in the primary", "delete the replica"])
def test_a_damaged_copy_is_named_read_around_and_repaired(
    run: Run, tmp_path: Path, damage: str
) -> None:
    code = _ingest(run)
    store = _store(tmp_path, "primary" if "primary" in damage else "replica")
    [copy] = [p for p in store.rglob("*") if p.is_file()]
    if "flip" in damage:
        data = bytearray(copy.read_bytes())
        data[len(data) // 2] ^= 0x40
        copy.write_bytes(bytes(data))
    else:
        copy.unlink()

    result = run("verify")
    assert result.code == 1
    assert copy.name in result.out
    assert ("primary" if "primary" in damage else "replica") in result.out

    out = tmp_path / "out.png"
    assert run("get", code, "-o", str(out)).code == 0
    assert out.read_bytes() == SCAN.read_bytes()

    result = run("repair")
    assert result.code == 0, result.out + result.err
    assert copy.name in result.out
    assert run("verify").code == 0
    assert run("verify", "--deep").code == 0
    assert _files(_store(tmp_path, "primary")) == _files(_store(tmp_path, "replica"))


def test_keys_rotate_rewraps_without_touching_originals(run: Run, tmp_path: Path) -> None:
    codes = [_ingest(run), _ingest(run)]
    assert run("worker", "--once", "--processes", "1").code == 0  # sidecars, OCR, index
    before = {n: _files(_store(tmp_path, n)) for n in ("primary", "replica")}
    # Each record: its original, OCR text, access copy and sidecar.
    assert len(before["primary"]) == 8
    [old_key] = [line.split()[1] for line in run("keys", "list").out.splitlines()]

    result = run("keys", "rotate")
    assert result.code == 0, result.err
    assert "re-wrapped 8 data keys" in result.out
    after = {n: _files(_store(tmp_path, n)) for n in ("primary", "replica")}
    for name in ("primary", "replica"):
        sealed = {k for k, v in before[name].items() if v.startswith(b"DANGANS1")}
        assert len(sealed) == 2  # the sidecars carry their key, so they are written again
        originals = {k: v for k, v in before[name].items() if k not in sealed}
        assert {k: v for k, v in after[name].items() if k in originals} == originals
        fresh = after[name].keys() - originals.keys()
        assert len(fresh) == 2  # under new ids; the old sidecars' copies are gone
        assert not fresh & sealed
        assert all(after[name][k].startswith(b"DANGANS1") for k in fresh)
    db = open_database(f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite'}")
    try:
        with db.engine.connect() as conn:
            live = "SELECT key_id FROM vault_objects WHERE wrapped_key IS NOT NULL"
            key_ids = {row[0] for row in conn.exec_driver_sql(live)}
    finally:
        db.dispose()
    assert len(key_ids) == 1
    assert result.out.split("new current key ")[1].split()[0] in key_ids
    assert run("keys", "retire", old_key).code == 0
    assert run("verify", "--deep").code == 0
    for code in codes:
        out = tmp_path / f"{code}.png"
        assert run("get", code, "-o", str(out)).code == 0
        assert out.read_bytes() == SCAN.read_bytes()


def test_a_bad_type_exits_2_and_stores_nothing(run: Run, tmp_path: Path) -> None:
    result = run("ingest", str(SCAN), "--type", "no such type", "--year", "2023")
    assert result.code == 2
    assert result.out == ""
    assert _files(_store(tmp_path, "primary")) == _files(_store(tmp_path, "replica")) == {}
    db = open_database(f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite'}")
    try:
        with db.engine.connect() as conn:
            counts = [
                conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()  # noqa: S608 - fixed names
                for t in ("records", "vault_objects")
            ]
    finally:
        db.dispose()
    assert counts == [0, 0]


def test_a_manifest_ingests_each_line_and_keeps_a_legacy_code(run: Run, tmp_path: Path) -> None:
    manifest = tmp_path / "batch" / "m.jsonl"
    manifest.parent.mkdir()
    (manifest.parent / "a.png").write_bytes(SCAN.read_bytes())
    manifest.write_text(
        f'{{"file": "a.png", "type": "{TYPE}", "year": 2021, "student_no": 20210001}}\n'
        f'{{"file": "a.png", "type": "{TYPE}", "year": 2019, '
        f'"archive_code": "2019-{TYPE}-042"}}\n',
        encoding="utf-8",
    )
    result = run("ingest", "--manifest", str(manifest), "--force", "--student-class", "高三(2)班")
    assert result.code == 0, result.err
    assert result.out.split() == [f"2021-{TYPE}-001", f"2019-{TYPE}-042"]
    # --student-class is every line's default; a number in JSON is kept as text
    assert _student_fields(tmp_path) == [
        ("20210001", "高三(2)班"),
        (None, "高三(2)班"),
    ]


def _student_fields(tmp_path: Path) -> list[tuple[str | None, str | None]]:
    db = open_database(f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite'}")
    try:
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT student_no, student_class FROM records ORDER BY id"
            ).all()
    finally:
        db.dispose()
    return [(r[0], r[1]) for r in rows]


def test_ingest_takes_the_students_class(run: Run, tmp_path: Path) -> None:
    result = run(
        "ingest", str(SCAN), "--type", TYPE, "--year", "2023", "--student-class", "高一(5)班"
    )
    assert result.code == 0, result.err
    assert _student_fields(tmp_path) == [(None, "高一(5)班")]
    too_long = run(
        "ingest",
        str(SCAN),
        "--type",
        TYPE,
        "--year",
        "2023",
        "--force",
        "--student-class",
        "班" * 65,
    )
    assert too_long.code == 2
    assert "student_class has at most 64 characters" in too_long.err
    assert len(_student_fields(tmp_path)) == 1


def test_get_as_a_user_is_checked_by_the_policy(run: Run, tmp_path: Path) -> None:
    code = _ingest(run)
    assert run("get", code, "-o", str(tmp_path / "x"), "--as", "root").code == 5
    assert not (tmp_path / "x").exists()


def test_ingest_as_a_clerk_is_audited_as_the_clerk(run: Run, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    assert run("user", "add", "li", "--role", "clerk", "--password-file", str(pw)).code == 0
    result = run("ingest", str(SCAN), "--type", TYPE, "--year", "2023", "--as", "li")
    assert result.code == 0, result.err
    code = result.out.strip()
    events = run("audit", "list", "--action", "record.create").out.splitlines()
    assert [(e["actor"], e["target"]) for e in map(json.loads, events)] == [
        ("li", f"record:{code}")
    ]


def test_an_old_key_is_retired_only_once_nothing_uses_it(run: Run) -> None:
    _ingest(run)
    [old] = run("keys", "list").out.splitlines()
    old_id = old.split()[1]
    assert run("keys", "retire", old_id).code == 3  # current
    assert run("keys", "rotate").code == 0
    listing = run("keys", "list").out.splitlines()
    assert listing[0].split() == [old_id, "0"]
    assert listing[1].startswith("* ")
    assert run("keys", "retire", old_id).code == 0
    assert [line.split()[1] for line in run("keys", "list").out.splitlines()] == [
        listing[1].split()[1]
    ]
    assert run("verify", "--deep").code == 0


def test_a_role_without_the_right_is_refused_and_the_refusal_audited(
    run: Run, tmp_path: Path
) -> None:
    pw = tmp_path / "pw"
    assert run("user", "add", "li", "--role", "clerk", "--password-file", str(pw)).code == 0
    assert run("verify", "--as", "li").code == 5
    assert run("keys", "rotate", "--as", "li").code == 5
    events = run("audit", "list", "--actor", "li").out.splitlines()
    assert [(e["action"], e["outcome"]) for e in map(json.loads, events)] == [
        ("fixity.run", "denied"),
        ("keys.manage", "denied"),
    ]


def test_a_store_out_of_reach_exits_3_and_marks_nothing(run: Run, tmp_path: Path) -> None:
    _ingest(run)
    replica = _store(tmp_path, "replica")
    away = replica.with_name("replica-unmounted")
    replica.rename(away)
    result = run("verify")
    assert result.code == 3
    assert "replica" in result.out
    assert "unreachable" in result.out
    away.rename(replica)
    assert run("verify").code == 0
