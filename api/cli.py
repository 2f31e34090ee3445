"""The ``dangan`` command line: a thin skin over ``api.services`` and the catalog.

Exit codes are the promise in ``dangan.errors.ExitCode``: 0 success, 1 a check found problems,
2 usage or input error, 3 an operational error; every error is one line on stderr, with the
traceback only under ``--debug`` (see ``api/errors.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import Progress

from api.errors import exit_for_error
from api.services import Runtime, initialize
from api.services import ingest as ingest_scan
from api.services.fixity import CopyProblem, repair_all
from api.services.fixity_cycle import verify_report
from api.services.keys import objects_left_to_rewrap, retire_key, rewrap_all, rotate_keyring
from api.services.reading import open_original
from api.services.vault import load_configured_keyring
from api.services.worker import resolve_processes, run_workers, stop_on_signals
from catalog import (
    Action,
    ChainHead,
    JobState,
    NewRecord,
    ObjectRole,
    RecordStatus,
    Role,
    SecurityClass,
    UserInfo,
    add_business_type,
    audit_denied,
    chain_head,
    change_password,
    count_objects_by_key,
    create_user,
    get_user,
    job_counts,
    list_business_types,
    list_events,
    list_jobs,
    list_users,
    require,
    retry_dead,
    set_disabled,
    verify_chain,
    with_grant,
)
from dangan import __version__
from dangan.config import load_settings
from dangan.errors import (
    CorruptDataError,
    DanganError,
    ExitCode,
    InvalidInputError,
    PermissionDeniedError,
)
from vault import Keyring

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _State:
    config: Path | None
    data_dir: Path | None
    debug: bool
    _rt: Runtime | None = field(default=None, init=False)

    @property
    def rt(self) -> Runtime:
        if self._rt is None:
            self._rt = Runtime(load_settings(self.config, data_dir=self.data_dir))
        return self._rt


pass_state = click.make_pass_decorator(_State)


def _read_password_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read the password file {path}: {exc.strerror}") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise InvalidInputError(f"the password file {path} is empty")
    return password


def _actor_option(f: F) -> F:
    return click.option(
        "--as",
        "actor",
        metavar="USER",
        help="The user this is done for; recorded in the audit trail. Must exist and be enabled.",
    )(f)


def _actor(st: _State, actor: str | None, *, default: str = "system") -> str:
    if actor is None:
        return default
    with st.rt.require_initialised().read() as s:
        user = get_user(s, actor)
    if user.disabled:
        raise InvalidInputError(f"user {actor!r} is disabled")
    return user.name


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dangan")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="DANGAN_CONFIG",
    help="A TOML settings file (else DANGAN_CONFIG; DANGAN_* variables override it).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the embedded default keeps everything (default ./dangan-data).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, data_dir: Path | None, debug: bool) -> None:
    """dangan (档案): the records vault of a student-records office."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(message)s"
    )
    ctx.obj = _State(config, data_dir, debug)
    ctx.call_on_close(lambda: ctx.obj._rt.close() if ctx.obj._rt else None)


@cli.command()
@click.option("--admin", required=True, metavar="NAME", help="Name of the first admin user.")
@click.option(
    "--password-file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A file whose first line is the admin's password.",
)
@pass_state
def init(st: _State, admin: str, password_file: Path) -> None:
    """Create the data directory, catalog, keyring and first admin (safe to run again)."""
    report = initialize(st.rt, admin=admin, password=_read_password_file(password_file))
    for what, where in report.created:
        click.echo(f"created  {what}: {where}")
    for what, where in report.existing:
        click.echo(f"kept     {what}: {where}")


# ---------------------------------------------------------------------------------------------
# users


@cli.group()
def user() -> None:
    """Users and their roles (clerk, supervisor, director, auditor, admin)."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--password-file", required=True, type=click.Path(path_type=Path, dir_okay=False))
@_actor_option
@pass_state
def user_add(st: _State, name: str, role: str, password_file: Path, actor: str | None) -> None:
    """Add a user NAME with a role; the password is the file's first line."""
    password = _read_password_file(password_file)
    who = _actor(st, actor)
    with st.rt.require_initialised().write() as s:
        info = create_user(s, name=name, role=role, password=password, actor=who)
    click.echo(f"added user {info.name} ({info.role})")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_state
def user_list(st: _State, as_json: bool) -> None:
    """List users, their roles and whether they are disabled."""
    with st.rt.require_initialised().read() as s:
        users = list_users(s)
    for u in users:
        if as_json:
            click.echo(json.dumps({"name": u.name, "role": u.role, "disabled": u.disabled}))
        else:
            click.echo(f"{u.name:<24} {u.role:<11} {'disabled' if u.disabled else 'active'}")


@user.command("disable")
@click.argument("name")
@_actor_option
@pass_state
def user_disable(st: _State, name: str, actor: str | None) -> None:
    """Disable a user: they can no longer sign in or act."""
    who = _actor(st, actor)
    with st.rt.require_initialised().write() as s:
        set_disabled(s, name=name, disabled=True, actor=who)
    click.echo(f"disabled user {name}")


@user.command("enable")
@click.argument("name")
@_actor_option
@pass_state
def user_enable(st: _State, name: str, actor: str | None) -> None:
    """Enable a disabled user again."""
    who = _actor(st, actor)
    with st.rt.require_initialised().write() as s:
        set_disabled(s, name=name, disabled=False, actor=who)
    click.echo(f"enabled user {name}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-file", required=True, type=click.Path(path_type=Path, dir_okay=False))
@_actor_option
@pass_state
def user_passwd(st: _State, name: str, password_file: Path, actor: str | None) -> None:
    """Set a user's password from a file's first line."""
    password = _read_password_file(password_file)
    who = _actor(st, actor)
    with st.rt.require_initialised().write() as s:
        change_password(s, name=name, password=password, actor=who)
    click.echo(f"changed the password of {name}")


# ---------------------------------------------------------------------------------------------
# business types


@cli.group("type")
def type_() -> None:
    """Business types (业务类型) and their retention periods."""


@type_.command("list")
@pass_state
def type_list(st: _State) -> None:
    """List business types with retention and default security class."""
    with st.rt.require_initialised().read() as s:
        for bt in list_business_types(s):
            state = "" if bt.active else " (inactive)"
            click.echo(f"{bt.name}\t{bt.retention.value}\t{bt.default_security_class}{state}")


@type_.command("add")
@click.argument("name")
@click.option("--retention", required=True, type=click.Choice(["永久", "30年", "10年"]))
@click.option("--security-class", default="internal", type=click.Choice(["internal", "contract"]))
@_actor_option
@pass_state
def type_add(st: _State, name: str, retention: str, security_class: str, actor: str | None) -> None:
    """Add a business type NAME."""
    who = _actor(st, actor)
    with st.rt.require_initialised().write() as s:
        add_business_type(
            s, name=name, retention=retention, default_security_class=security_class, actor=who
        )
    click.echo(f"added business type {name}")


# ---------------------------------------------------------------------------------------------
# audit trail


@cli.group()
def audit() -> None:
    """The hash-chained audit trail (留痕)."""


def _parse_head(text: str) -> ChainHead:
    try:
        doc = json.loads(text)
        return ChainHead(int(doc["id"]), str(doc["hash"]))
    except (ValueError, KeyError, TypeError):
        raise InvalidInputError(
            'a chain head is JSON like {"id": 12, "hash": "..."} as `dangan audit head` prints'
        ) from None


@audit.command("verify")
@click.option(
    "--head",
    "head_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A head kept from `dangan audit head`: also detects a cut tail.",
)
@pass_state
def audit_verify(st: _State, head_file: Path | None) -> None:
    """Check the whole chain; exit 1 naming the first bad event."""
    expected = _parse_head(head_file.read_text()) if head_file else None
    with st.rt.require_initialised().read() as s:
        report = verify_chain(s, expected_head=expected)
    if report.ok:
        head = f" ending at event {report.head.id}" if report.head else ""
        click.echo(f"audit trail intact: {report.events} events{head}")
        return
    for problem in report.problems:
        click.echo(str(problem), err=True)
    click.echo(
        f"audit trail BROKEN: first bad event {report.problems[0].event_id} "
        f"({len(report.problems)} problems in {report.events} events)",
        err=True,
    )
    sys.exit(int(ExitCode.check_failed))


@audit.command("head")
@pass_state
def audit_head(st: _State) -> None:
    """Print the chain head as JSON; keep it elsewhere to detect truncation later."""
    with st.rt.require_initialised().read() as s:
        head = chain_head(s)
    click.echo(json.dumps(head.as_dict() if head else {"id": 0, "hash": None}))


@audit.command("list")
@click.option("--after", default=0, type=int, help="Only events after this id.")
@click.option("--limit", default=50, type=click.IntRange(1, 10_000))
@click.option("--action", default=None)
@click.option("--actor", default=None)
@pass_state
def audit_list(st: _State, after: int, limit: int, action: str | None, actor: str | None) -> None:
    """Show events in chain order as JSON lines."""
    with st.rt.require_initialised().read() as s:
        events = list_events(s, after_id=after, limit=limit, action=action, actor=actor)
    for e in events:
        click.echo(
            json.dumps(
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "outcome": e.outcome,
                    "target": e.target,
                    "detail": e.detail,
                },
                ensure_ascii=False,
            )
        )


# ---------------------------------------------------------------------------------------------
# jobs


@cli.command()
@click.option(
    "--processes",
    type=click.IntRange(min=0),
    default=None,
    help="Worker processes (default: worker.processes; 0 = one per core).",
)
@click.option("--once", is_flag=True, help="Exit 0 once no job is left to run (scripts, tests).")
@pass_state
def worker(st: _State, processes: int | None, once: bool) -> None:
    """Run queued jobs until stopped (Ctrl-C or SIGTERM finish the jobs in hand first)."""
    st.rt.require_initialised()
    count = resolve_processes(st.rt.settings.worker.processes if processes is None else processes)
    click.echo(f"dangan worker: {count} processes", err=True)
    stop = threading.Event()
    with stop_on_signals(stop):
        code = run_workers(st.rt, count, stop, once=once)
    with st.rt.require_initialised().read() as s:
        counts = job_counts(s)
    click.echo(", ".join(f"{name.value} {n}" for name, n in counts.items()), err=True)
    if code:
        sys.exit(code)


@cli.group()
def jobs() -> None:
    """The job queue: what waits, runs, is done or is dead."""


@jobs.command("list")
@click.option("--state", type=click.Choice([s.value for s in JobState]), default=None)
@click.option("--kind", default=None, help="Only jobs of this kind, e.g. audit.verify.")
@click.option("--limit", default=50, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_state
def jobs_list(st: _State, state: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first, with attempts and the last error."""
    with st.rt.require_initialised().read() as s:
        found = list_jobs(s, state=state, kind=kind, limit=limit)
        counts = job_counts(s)
    for j in found:
        if as_json:
            doc = {
                "id": j.id,
                "kind": j.kind,
                "state": j.state.value,
                "attempts": j.attempts,
                "max_attempts": j.max_attempts,
                "run_after": j.run_after.isoformat(),
                "lease_owner": j.lease_owner,
                "last_error": j.last_error,
            }
            click.echo(json.dumps(doc, ensure_ascii=False))
        else:
            error = f"  {j.last_error}" if j.last_error else ""
            click.echo(
                f"{j.id:>8} {j.state.value:<8} {j.kind:<24} {j.attempts}/{j.max_attempts}{error}"
            )
    if not as_json:
        click.echo(", ".join(f"{name.value} {n}" for name, n in counts.items()), err=True)


@jobs.command("retry")
@click.argument("job_id", type=int)
@_actor_option
@pass_state
def jobs_retry(st: _State, job_id: int, actor: str | None) -> None:
    """Queue a dead job again with fresh attempts."""
    who = _actor(st, actor)
    with st.rt.require_initialised().write() as s:
        job = retry_dead(s, job_id, actor=who)
    click.echo(f"job {job.id} ({job.kind}) queued again")


# ---------------------------------------------------------------------------------------------
# the vault: intake, reading, fixity, keys


def _person(st: _State, actor: str | None) -> tuple[str, UserInfo | None]:
    """The name to audit and, with ``--as``, the user the policy checks (``None``: system)."""
    if actor is None:
        return "system", None
    with st.rt.require_initialised().read() as s:
        # A break-glass grant in force widens what the policy lets this user read.
        user = with_grant(s, get_user(s, actor))
    if user.disabled:
        raise InvalidInputError(f"user {actor!r} is disabled")
    return user.name, user


_MANIFEST_FIELDS = {
    "file",
    "type",
    "business_type",
    "year",
    "title",
    "student_no",
    "student_name",
    "student_class",
    "security_class",
    "paper_location",
    "archive_code",
}


def _security_class(value: object) -> SecurityClass | None:
    if value is None:
        return None
    try:
        return SecurityClass(str(value))
    except ValueError:
        names = ", ".join(c.value for c in SecurityClass)
        raise InvalidInputError(f"unknown security class; classes are {names}") from None


def _text(value: object) -> str | None:
    """A manifest's optional text field: JSON may give a student number as a number."""
    return None if value is None else str(value)


def _read_manifest(path: Path, defaults: dict[str, Any]) -> list[tuple[Path, NewRecord]]:
    """Every line checked before anything is stored, so a typo on line 90 stores nothing."""
    items: list[tuple[Path, NewRecord]] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                raise InvalidInputError(f"{where}: not a JSON object") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("file"), str):
                raise InvalidInputError(f'{where}: a JSON object with "file" is needed')
            unknown = sorted(set(doc) - _MANIFEST_FIELDS)
            if unknown:
                raise InvalidInputError(f"{where}: unknown fields {', '.join(unknown)}")
            fields = defaults | {k: v for k, v in doc.items() if v is not None}
            btype = fields.get("business_type", fields.get("type"))
            if not btype or fields.get("year") is None:
                raise InvalidInputError(f"{where}: a type and a year are needed")
            try:
                year = int(fields["year"])
            except (TypeError, ValueError):
                raise InvalidInputError(f"{where}: the year is not a number") from None
            file = (path.parent / doc["file"]).resolve()
            if not file.is_file():
                raise InvalidInputError(f"{where}: no such file")
            new = NewRecord(
                business_type=str(btype),
                year=year,
                title=str(fields.get("title") or ""),
                student_no=_text(fields.get("student_no")),
                student_name=_text(fields.get("student_name")),
                student_class=_text(fields.get("student_class")),
                security_class=_security_class(fields.get("security_class")),
                paper_location=_text(fields.get("paper_location")),
                archive_code=fields.get("archive_code"),
            )
            items.append((file, new))
    return items


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--type", "business_type", metavar="T", help="The business type (业务类型).")
@click.option("--year", type=int, metavar="Y", help="The year the record belongs to.")
@click.option("--title", default=None, help="A title for the record.")
@click.option("--student-no", default=None, help="The student's number.")
@click.option("--student-name", default=None, help="The student's name.")
@click.option("--student-class", default=None, help="The student's class (班级), e.g. 高三(2)班.")
@click.option(
    "--security-class",
    type=click.Choice([c.value for c in SecurityClass]),
    default=None,
    help="Default: the business type's.",
)
@click.option("--paper-location", default=None, help="Where the paper original is kept.")
@click.option(
    "--manifest",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help='JSON lines: {"file": path relative to the manifest, "type", "year", ... and '
    'optionally a legacy "archive_code"}; the options above are the defaults.',
)
@click.option(
    "--force",
    is_flag=True,
    help="Store a scan even when a record with the same content exists already.",
)
@_actor_option
@pass_state
def ingest(
    st: _State,
    files: tuple[Path, ...],
    business_type: str | None,
    year: int | None,
    title: str | None,
    student_no: str | None,
    student_name: str | None,
    student_class: str | None,
    security_class: str | None,
    paper_location: str | None,
    manifest: Path | None,
    force: bool,
    actor: str | None,
) -> None:
    """Store scans encrypted in both stores; print each new record's archive code.

    Each file must be a PDF, PNG, JPEG or TIFF (told by its bytes, not its name) within the
    intake limits (intake.max_bytes, intake.max_pages, ocr.max_image_pixels). A file that is
    refused, or whose content is already archived (unless --force), stops the command with
    its reason (exit 2, or 6 for a duplicate) and leaves nothing behind; the codes printed
    before it stand.
    """
    if not files and manifest is None:
        raise InvalidInputError("give FILE... or --manifest")
    given = {
        "business_type": business_type,
        "year": year,
        "title": title,
        "student_no": student_no,
        "student_name": student_name,
        "student_class": student_class,
        "security_class": security_class,
        "paper_location": paper_location,
    }
    defaults = {k: v for k, v in given.items() if v is not None}
    items: list[tuple[Path, NewRecord]] = []
    if files:
        if business_type is None or year is None:
            raise InvalidInputError("--type and --year are needed with FILE...")
        record = NewRecord(
            business_type=business_type,
            year=year,
            title=title or "",
            student_no=student_no,
            student_name=student_name,
            student_class=student_class,
            security_class=_security_class(security_class),
            paper_location=paper_location,
        )
        items.extend((f, record) for f in files)
    if manifest is not None:
        items.extend(_read_manifest(manifest, defaults))
    who, person = _person(st, actor)
    for file, new in items:
        try:
            info = ingest_scan(
                st.rt, file, new, actor=who, user=person, upload_name=file.name, force=force
            )
        except DanganError:
            click.echo(f"{file}: not stored", err=True)  # which one; the reason follows
            raise
        click.echo(info.archive_code)
        if info.status is RecordStatus.under_replicated:
            click.echo(f"warning: {info.archive_code} is under-replicated", err=True)


@cli.command()
@click.argument("code")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the decrypted file.",
)
@click.option(
    "--access-copy",
    "what",
    flag_value="access_copy",
    help="The searchable PDF made from the scan (page images with an invisible text layer).",
)
@click.option(
    "--ocr-text", "what", flag_value="ocr_text", help="The OCR result of every page (JSON)."
)
@_actor_option
@pass_state
def get(st: _State, code: str, output: Path, what: str | None, actor: str | None) -> None:
    """Write the decrypted original of record CODE (or its access copy, or its OCR text) to
    OUTPUT.

    The file appears only once the whole plaintext has passed its SHA-256 check.
    """
    who, person = _person(st, actor)
    role = ObjectRole(what) if what else ObjectRole.original
    original = open_original(st.rt, code, actor=who, user=person, role=role)
    output = output.absolute()
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.new(original.digest_algorithm)  # the object's: sha256 or sm3
        with os.fdopen(fd, "wb") as fh:
            for piece in original.chunks:
                digest.update(piece)
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        if not hmac.compare_digest(digest.hexdigest(), original.plaintext_sha256):
            raise CorruptDataError(f"record {code}: the plaintext digest differs")
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    click.echo(f"wrote {original.size} bytes to {output}", err=True)


def _require_system(st: _State, actor: str | None, action: Action) -> str:
    """The name to audit; with ``--as``, the user must be allowed ``action`` (a refusal is
    audited)."""
    who, person = _person(st, actor)
    if person is not None:
        try:
            require(person, action)
        except PermissionDeniedError as exc:
            with st.rt.require_initialised().write() as s:
                audit_denied(s, person, action, None, error=exc)
            raise
    return who


def _problem_exit_code(problems: list[CopyProblem]) -> int:
    """1 when a copy is bad or missing; 3 when the only trouble is a store out of reach."""
    if all(p.kind == "unreachable" for p in problems):
        return int(ExitCode.operational)
    return int(ExitCode.check_failed)


@cli.command()
@click.option("--deep", is_flag=True, help="Also decrypt every copy (needs the keyring).")
@click.option("--repair", "fix", is_flag=True, help="Restore bad or missing copies as found.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@_actor_option
@pass_state
def verify(st: _State, deep: bool, fix: bool, as_json: bool, actor: str | None) -> None:
    """Check every copy in both stores and print a report: copies checked, ok, repaired, bad,
    missing, unreachable, and objects damaged (no good copy left). Exit 1 listing each copy
    still bad or missing; if a store out of reach is the only trouble, exit 3.
    """
    who = _require_system(st, actor, Action.repair_run if fix else Action.fixity_run)
    st.rt.require_initialised()
    report = verify_report(st.rt, deep=deep, repair=fix, actor=who)
    if as_json:
        click.echo(json.dumps({**report.to_json(), "deep": deep}, sort_keys=True))
    else:
        for problem in report.problems:
            click.echo(str(problem))
        c = report.counts()
        click.echo(
            f"{c['checked']} copies checked{' (deep)' if deep else ''}: {c['ok']} ok, "
            f"{c['repaired']} repaired, {c['bad']} bad, {c['missing']} missing, "
            f"{c['unreachable']} unreachable; {c['damaged']} objects damaged",
            err=True,
        )
    if report.problems:
        sys.exit(_problem_exit_code(report.problems))


@cli.command()
@_actor_option
@pass_state
def repair(st: _State, actor: str | None) -> None:
    """Restore bad or missing copies from the good one; exit 1 if any remain."""
    who = _require_system(st, actor, Action.repair_run)
    st.rt.require_initialised()
    report = repair_all(st.rt, actor=who)
    for object_id, store in report.restored:
        click.echo(f"restored {store} copy of object {object_id}")
    for problem in report.failed:
        click.echo(str(problem))
    if report.failed:
        click.echo(f"{len(report.failed)} copies could not be restored", err=True)
        sys.exit(_problem_exit_code(report.failed))
    click.echo(f"{len(report.restored)} copies restored", err=True)


@cli.group()
def keys() -> None:
    """The keyring that wraps every data key (back it up: without it nothing can be read)."""


def _rewrap_with_progress(st: _State, keyring: Keyring, who: str) -> int:
    total = objects_left_to_rewrap(st.rt, keyring)
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task("re-wrapping data keys", total=total)
        done = rewrap_all(st.rt, keyring, actor=who, progress=lambda n: bar.advance(task, n))
    return done


@keys.command("rotate")
@_actor_option
@pass_state
def keys_rotate(st: _State, actor: str | None) -> None:
    """Add a new current key, then re-wrap every data key onto it (content is untouched).

    If interrupted, `dangan keys rewrap` finishes the re-wrapping.
    """
    who = _require_system(st, actor, Action.keys_manage)
    st.rt.require_initialised()
    keyring = rotate_keyring(st.rt, actor=who)
    click.echo(f"new current key {keyring.current.id}")
    done = _rewrap_with_progress(st, keyring, who)
    click.echo(f"re-wrapped {done} data keys")


@keys.command("retire")
@click.argument("key_id")
@_actor_option
@pass_state
def keys_retire(st: _State, key_id: str, actor: str | None) -> None:
    """Remove an old key KEY_ID from the keyring once no data key uses it."""
    who = _require_system(st, actor, Action.keys_manage)
    st.rt.require_initialised()
    retire_key(st.rt, key_id, actor=who)
    click.echo(f"retired key {key_id}")


@keys.command("list")
@pass_state
def keys_list(st: _State) -> None:
    """List the keyring's key ids (never the keys), the current one marked, with how many
    data keys each wraps."""
    keyring = load_configured_keyring(st.rt.settings)
    with st.rt.require_initialised().read() as s:
        counts = count_objects_by_key(s)
    for key_id in keyring.key_ids:
        mark = "*" if key_id == keyring.current.id else " "
        click.echo(f"{mark} {key_id}\t{counts.get(key_id, 0)}")


@keys.command("rewrap")
@_actor_option
@pass_state
def keys_rewrap(st: _State, actor: str | None) -> None:
    """Re-wrap the data keys still on an older key (resumes an interrupted rotation)."""
    who = _require_system(st, actor, Action.keys_manage)
    st.rt.require_initialised()
    vault = st.rt.vault
    if vault.keyring is None:  # pragma: no cover - the runtime's vault always has one
        raise InvalidInputError("no keyring")
    done = _rewrap_with_progress(st, vault.keyring, who)
    click.echo(f"re-wrapped {done} data keys")


# ---------------------------------------------------------------------------------------------
# server


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: server.host).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Default: server.port.")
@pass_state
def serve(st: _State, host: str | None, port: int | None) -> None:
    """Serve the API and web pages (the embedded default: everything in one process)."""
    import uvicorn

    from api.app import create_app

    st.rt.require_initialised()
    cfg = st.rt.settings.server
    click.echo(f"dangan listening on http://{host or cfg.host}:{port or cfg.port}/")
    app = create_app(st.rt, with_workers=st.rt.settings.worker.in_server)
    uvicorn.run(app, host=host or cfg.host, port=port or cfg.port, log_level="info")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map every error to one line and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="dangan", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        sys.exit(int(ExitCode.invalid_input))
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        exit_for_error(exc, debug=debug)
    sys.exit(0)


# `dangan status`, `search` and `index` live beside this module and attach to `cli` on import.
from api import cli_backup as cli_backup  # noqa: E402
from api import cli_breakglass as cli_breakglass  # noqa: E402
from api import cli_changes as cli_changes  # noqa: E402
from api import cli_check as cli_check  # noqa: E402
from api import cli_fixity as cli_fixity  # noqa: E402
from api import cli_retention as cli_retention  # noqa: E402
from api import cli_review as cli_review  # noqa: E402
from api import cli_sampling as cli_sampling  # noqa: E402
from api import cli_search as cli_search  # noqa: E402
from api import cli_transfer as cli_transfer  # noqa: E402
