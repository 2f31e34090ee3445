"""The ``dangan`` command as scripts and people use it: output, files, and exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.cli import main
from catalog import open_database
from tests.services import PostgresServer, free_ports
from tests.tampering import tamper_audit

DANGAN = str(Path(sys.executable).with_name("dangan"))
PASSWORD = "correct-horse-battery"


@dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    path = tmp_path / "pw"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def run(
    request: pytest.FixtureRequest,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Run]:
    """Run ``dangan --data-dir D ARGS`` in-process; the catalog on SQLite or PostgreSQL."""
    data = tmp_path / "data"
    pg: PostgresServer | None = None
    url = None
    if request.param == "postgresql":
        pg = request.getfixturevalue("pg_server")
        url = pg.create_database()
        clean_env.setenv("DANGAN_DATABASE__URL", url)

    def _run(*args: str) -> Result:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(["--data-dir", str(data), *args])
        captured = capsys.readouterr()
        return Result(int(exit_info.value.code or 0), captured.out, captured.err)

    _run.data = data  # type: ignore[attr-defined]  # handy for tests
    _run.url = url or f"sqlite:///{data / 'catalog.sqlite'}"  # type: ignore[attr-defined]
    yield _run
    if pg is not None and url is not None:
        pg.drop_database(url)


def _tamper(url: str, sql: str) -> None:
    db = open_database(url)
    tamper_audit(db, sql)
    db.dispose()


def test_init_creates_everything_and_says_where(run: Run, pwfile: Path) -> None:
    r = run("init", "--admin", "root", "--password-file", str(pwfile))
    assert r.code == 0, r.err
    data: Path = run.data  # type: ignore[attr-defined]
    for what in ("data directory", "vault primary store", "vault replica store", "keyring"):
        assert f"created  {what}" in r.out
    assert "created  admin: root" in r.out
    assert (data / "vault" / "primary").is_dir()
    assert (data / "vault" / "replica").is_dir()
    keyring = data / "keyring"
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
    for private in (data, data / "vault", data / "vault" / "primary", data / "index"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o700, private
    if (data / "catalog.sqlite").exists():  # the embedded default
        assert stat.S_IMODE((data / "catalog.sqlite").stat().st_mode) == 0o600
    assert PASSWORD not in r.out + r.err

    again = run("init", "--admin", "root", "--password-file", str(pwfile))
    assert again.code == 0, again.err
    assert "created" not in again.out
    assert "kept     admin: root" in again.out
    assert keyring.read_bytes() == keyring.read_bytes()
    users = run("user", "list", "--json")
    assert [json.loads(line) for line in users.out.splitlines()] == [
        {"name": "root", "role": "admin", "disabled": False}
    ]


def test_init_keeps_an_existing_keyring(run: Run, pwfile: Path) -> None:
    assert run("init", "--admin", "root", "--password-file", str(pwfile)).code == 0
    keyring = run.data / "keyring"  # type: ignore[attr-defined]
    before = keyring.read_bytes()
    assert run("init", "--admin", "root", "--password-file", str(pwfile)).code == 0
    assert keyring.read_bytes() == before


def test_user_lifecycle(run: Run, pwfile: Path, tmp_path: Path) -> None:
    assert run("init", "--admin", "root", "--password-file", str(pwfile)).code == 0
    r = run(
        "user", "add", "小王", "--role", "clerk", "--password-file", str(pwfile), "--as", "root"
    )
    assert r.code == 0, r.err
    assert run("user", "add", "小王", "--role", "clerk", "--password-file", str(pwfile)).code == 6
    assert run("user", "add", "bob", "--role", "emperor", "--password-file", str(pwfile)).code == 2
    short = tmp_path / "short"
    short.write_text("abc\n")
    r = run("user", "add", "bob", "--role", "auditor", "--password-file", str(short))
    assert r.code == 2
    assert "at least" in r.err
    assert run("user", "disable", "小王", "--as", "root").code == 0
    listed = {
        json.loads(x)["name"]: json.loads(x) for x in run("user", "list", "--json").out.splitlines()
    }
    assert listed["小王"]["disabled"] is True
    assert run("user", "passwd", "小王", "--password-file", str(pwfile)).code == 0
    assert run("user", "disable", "nobody").code == 4
    # A disabled user cannot act for anyone.
    r = run("user", "add", "eve", "--role", "clerk", "--password-file", str(pwfile), "--as", "小王")
    assert r.code == 2
    assert "disabled" in r.err
    trail = [json.loads(x) for x in run("audit", "list", "--limit", "1000").out.splitlines()]
    actions = [(e["actor"], e["action"], e["target"]) for e in trail]
    assert ("root", "user.create", "user:小王") in actions
    assert ("root", "user.disable", "user:小王") in actions
    assert ("system", "user.passwd", "user:小王") in actions
    assert all(PASSWORD not in json.dumps(e) for e in trail)


def test_audit_verify_finds_tampering(run: Run, pwfile: Path, tmp_path: Path) -> None:
    assert run("init", "--admin", "root", "--password-file", str(pwfile)).code == 0
    assert run("user", "add", "amy", "--role", "auditor", "--password-file", str(pwfile)).code == 0
    ok = run("audit", "verify")
    assert ok.code == 0
    assert "intact" in ok.out
    head = run("audit", "head")
    kept = tmp_path / "head.json"
    kept.write_text(head.out)
    assert json.loads(head.out)["id"] > 3

    _tamper(run.url, "UPDATE audit_events SET actor = 'mallory' WHERE id = 3")  # type: ignore[attr-defined]
    bad = run("audit", "verify")
    assert bad.code == 1
    assert "first bad event 3" in bad.err
    assert "Traceback" not in bad.err


def test_audit_verify_with_kept_head_finds_a_cut_tail(
    run: Run, pwfile: Path, tmp_path: Path
) -> None:
    assert run("init", "--admin", "root", "--password-file", str(pwfile)).code == 0
    kept = tmp_path / "head.json"
    kept.write_text(run("audit", "head").out)
    last = json.loads(kept.read_text())["id"]
    _tamper(run.url, f"DELETE FROM audit_events WHERE id = {last}")  # type: ignore[attr-defined]  # noqa: S608
    assert run("audit", "verify").code == 0
    r = run("audit", "verify", "--head", str(kept))
    assert r.code == 1
    assert f"first bad event {last}" in r.err
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json")
    assert run("audit", "verify", "--head", str(garbage)).code == 2


def test_business_types_are_seeded_and_extensible(run: Run, pwfile: Path) -> None:
    assert run("init", "--admin", "root", "--password-file", str(pwfile)).code == 0
    listed = run("type", "list").out
    assert "新生入学\t永久\tinternal" in listed
    assert "合同\t30年\tcontract" in listed
    assert run("type", "add", "实习证明", "--retention", "10年").code == 0
    assert "实习证明\t10年\tinternal" in run("type", "list").out
    assert run("type", "add", "实习证明", "--retention", "10年").code == 6
    assert run("type", "add", "bad-name", "--retention", "10年").code == 2


@pytest.mark.usefixtures("clean_env")
def test_errors_are_one_line_with_the_promised_exit_codes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANGAN_")}
    data = str(tmp_path / "nothing-here")

    def sh(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DANGAN, "--data-dir", data, *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=60,
            check=False,
        )

    not_initialised = sh("user", "list")
    assert not_initialised.returncode == 3
    assert "dangan init" in not_initialised.stderr
    assert len(not_initialised.stderr.strip().splitlines()) == 1

    bad_config = sh("user", "list", DANGAN_VAULT__PRIMARY__KIND="ftp")
    assert bad_config.returncode == 2
    assert "vault.primary.kind" in bad_config.stderr
    assert len(bad_config.stderr.strip().splitlines()) == 1

    usage = sh("no-such-command")
    assert usage.returncode == 2

    missing_pw = sh("init", "--admin", "root", "--password-file", str(tmp_path / "none"))
    assert missing_pw.returncode == 2
    assert "password file" in missing_pw.stderr
    assert not (tmp_path / "nothing-here").exists()

    unreachable = sh("user", "list", DANGAN_DATABASE__URL="postgresql://u@127.0.0.1:9/x")
    assert unreachable.returncode == 3
    assert "cannot be reached" in unreachable.stderr
    (dead_port,) = free_ports(1)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    dead_s3 = sh(
        "init",
        "--admin",
        "root",
        "--password-file",
        str(pw),
        DANGAN_VAULT__REPLICA__KIND="s3",
        DANGAN_VAULT__REPLICA__ENDPOINT=f"127.0.0.1:{dead_port}",
        DANGAN_VAULT__REPLICA__ACCESS_KEY="dangan-test-access",
        DANGAN_VAULT__REPLICA__SECRET_KEY="dangan-test-secret-key",
        DANGAN_VAULT__REPLICA__SECURE="false",
    )
    assert dead_s3.returncode == 3, dead_s3.stderr
    assert "cannot create the bucket" in dead_s3.stderr
    assert "dangan-test-secret-key" not in dead_s3.stderr
    for r in (not_initialised, bad_config, usage, missing_pw, unreachable, dead_s3):
        assert "Traceback" not in r.stderr

    version = sh("--version")
    assert version.returncode == 0
    assert "dangan" in version.stdout
