"""The ``dangan`` command line: a thin skin over ``api.services`` and the catalog.

Exit codes are the promise in ``dangan.errors.ExitCode``: 0 success, 1 a check found problems,
2 usage or input error, 3 an operational error; every error is one line on stderr, with the
traceback only under ``--debug`` (see ``api/errors.py``).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from api.errors import exit_for_error
from api.services import Runtime, initialize
from api.services.worker import resolve_processes, run_workers, stop_on_signals
from catalog import (
    ChainHead,
    JobState,
    Role,
    add_business_type,
    chain_head,
    change_password,
    create_user,
    get_user,
    job_counts,
    list_business_types,
    list_events,
    list_jobs,
    list_users,
    retry_dead,
    set_disabled,
    verify_chain,
)
from dangan import __version__
from dangan.config import load_settings
from dangan.errors import ExitCode, InvalidInputError

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
