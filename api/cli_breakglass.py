"""``dangan breakglass`` and ``dangan incident``: emergency access with its paperwork, and the
incident log (docs/breakglass.md, docs/incidents.md). Imported by ``api/cli.py``, which they
are part of. Every command acts as ``--as USER``: the policy decides, as for the API."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from api.cli import _person, _State, cli, pass_state
from api.services import breakglass as bg
from api.services import incidents as inc
from catalog import (
    DEFAULT_HOURS,
    MAX_HOURS,
    GrantInfo,
    GrantState,
    IncidentInfo,
    IncidentKind,
    IncidentState,
    UserInfo,
)
from dangan.errors import ExitCode, InvalidInputError
from vault import CHUNK

__all__ = ["breakglass", "incident"]

_AS = click.option("--as", "actor", metavar="USER", help="Act as this user (the policy decides).")
_JSON = click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")


def _user(st: _State, actor: str | None) -> UserInfo:
    _, person = _person(st, actor)
    if person is None:
        raise InvalidInputError("--as USER is needed: the policy decides who may do this")
    return person


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def _grant_json(g: GrantInfo, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": g.id,
        "grantee": g.grantee,
        "reason": g.reason,
        "state": g.state.value,
        "status": g.status(now).value,
        "granted_by": g.granted_by,
        "granted_at": _when(g.granted_at) if g.granted_at else None,
        "ends_at": _when(g.ends_at) if g.ends_at else None,
        "paperwork": g.paperwork_object_id is not None,
        "paperwork_due": _when(g.paperwork_due) if g.paperwork_due else None,
        "approved_by": g.approved_by,
        "overdue": g.is_overdue(now),
    }


def _grant_line(g: GrantInfo, now: dt.datetime) -> str:
    flags = []
    if g.paperwork_object_id is not None:
        flags.append("paperwork filed")
    if g.is_overdue(now):
        flags.append("PAPERWORK OVERDUE")
    return (
        f"{g.id}\t{g.grantee}\t{g.status(now).value}\tuntil {_when(g.ends_at)}"
        f"\tdue {_when(g.paperwork_due)}" + (f"\t{', '.join(flags)}" if flags else "")
    )


@cli.group()
def breakglass() -> None:
    """Break-glass: time-boxed emergency access for a named user, with a reason; the
    paperwork is due within 5 days and a director's approval closes the grant."""


@breakglass.command("request")
@click.option("--reason", required=True, help="Why you need emergency access.")
@_AS
@pass_state
def breakglass_request(st: _State, reason: str, actor: str | None) -> None:
    """Ask for emergency access for yourself (breakglass.request)."""
    g = bg.ask(st.rt, _user(st, actor), reason)
    click.echo(f"requested {g.id}: a director or an admin grants or refuses it")


@breakglass.command("grant")
@click.argument("user", required=False)
@click.option("--request", "request_id", type=int, help="Grant this open request instead.")
@click.option("--reason", help="Why (needed unless granting a request).")
@click.option(
    "--hours",
    type=click.IntRange(1, MAX_HOURS),
    default=DEFAULT_HOURS,
    show_default=True,
    help="How long the access lasts from now.",
)
@_AS
@pass_state
def breakglass_grant(
    st: _State,
    user: str | None,
    request_id: int | None,
    reason: str | None,
    hours: int,
    actor: str | None,
) -> None:
    """Grant USER (or the asker of --request) emergency access: they read contract-class
    records as their role reads internal ones, until it ends (breakglass.grant)."""
    g = bg.grant(
        st.rt, _user(st, actor), grantee=user, request_id=request_id, hours=hours, reason=reason
    )
    click.echo(
        f"granted {g.id} to {g.grantee} until {_when(g.ends_at)}; "
        f"paperwork due {_when(g.paperwork_due)}"
    )


@breakglass.command("list")
@click.option(
    "--state", type=click.Choice([s.value for s in GrantState]), help="Only grants in this state."
)
@click.option("--overdue", is_flag=True, help="Only grants whose paperwork is overdue.")
@_JSON
@_AS
@pass_state
def breakglass_list(
    st: _State, state: str | None, overdue: bool, as_json: bool, actor: str | None
) -> None:
    """Grants and requests, newest first: every one for those who grant, approve or read the
    audit trail; your own for everyone else. Exits 1 with --overdue when any is overdue."""
    now = dt.datetime.now(dt.UTC)
    found = bg.grants(st.rt, _user(st, actor), states=(GrantState(state),) if state else ())
    if overdue:
        found = [g for g in found if g.is_overdue(now)]
    if as_json:
        click.echo(json.dumps([_grant_json(g, now) for g in found], ensure_ascii=False))
    else:
        for g in found:
            click.echo(_grant_line(g, now))
    if overdue and found:
        sys.exit(int(ExitCode.check_failed))


@breakglass.command("revoke")
@click.argument("grant_id", type=int)
@click.option("--reason", required=True, help="Why it ends now.")
@_AS
@pass_state
def breakglass_revoke(st: _State, grant_id: int, reason: str, actor: str | None) -> None:
    """Refuse an open request, or end a grant in force now (breakglass.grant). Its paperwork
    is still owed."""
    g = bg.revoke(st.rt, _user(st, actor), grant_id, reason)
    click.echo(f"{g.id} {g.state.value}")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


@breakglass.command("paperwork")
@click.argument("grant_id", type=int)
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_AS
@pass_state
def breakglass_paperwork(st: _State, grant_id: int, document: Path, actor: str | None) -> None:
    """File DOCUMENT (PDF, PNG, JPEG or TIFF) as the grant's paperwork, encrypted into the
    vault. The grantee, or one who may grant."""
    g = bg.upload_paperwork(st.rt, _user(st, actor), grant_id, _chunks(document))
    click.echo(f"paperwork filed for {g.id}; a director approves it to close the grant")


@breakglass.command("approve")
@click.argument("grant_id", type=int)
@_AS
@pass_state
def breakglass_approve(st: _State, grant_id: int, actor: str | None) -> None:
    """Approve the grant's paperwork, closing the grant (breakglass.approve)."""
    g = bg.approve(st.rt, _user(st, actor), grant_id)
    click.echo(f"{g.id} closed")


# ---------------------------------------------------------------------------------------------
# the incident log


def _incident_json(i: IncidentInfo) -> dict[str, Any]:
    return {
        "id": i.id,
        "kind": i.kind.value,
        "summary": i.summary,
        "occurred_at": _when(i.occurred_at) if i.occurred_at else None,
        "reported_by": i.reported_by,
        "reported_at": _when(i.reported_at),
        "state": i.state.value,
        "records": list(i.records),
        "actions": [{"actor": a.actor, "at": _when(a.at), "text": a.text} for a in i.actions],
        "closed_by": i.closed_by,
        "closed_at": _when(i.closed_at) if i.closed_at else None,
        "closure": i.closure,
    }


@cli.group()
def incident() -> None:
    """The incident log of suspected data leaks and losses: report, act, close."""


@incident.command("report")
@click.option("--kind", type=click.Choice([k.value for k in IncidentKind]), required=True)
@click.option("--summary", required=True, help="What happened.")
@click.option(
    "--when",
    "occurred_at",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="When it happened or was noticed (UTC).",
)
@click.option("--record", "records", multiple=True, metavar="CODE", help="A record involved.")
@_AS
@pass_state
def incident_report(
    st: _State,
    kind: str,
    summary: str,
    occurred_at: dt.datetime | None,
    records: tuple[str, ...],
    actor: str | None,
) -> None:
    """Report a suspected leak or loss (incident.report)."""
    when = occurred_at.replace(tzinfo=dt.UTC) if occurred_at else None
    i = inc.report(
        st.rt, _user(st, actor), kind=kind, summary=summary, occurred_at=when, records=records
    )
    click.echo(f"incident {i.id} reported")


@incident.command("list")
@click.option("--state", type=click.Choice([s.value for s in IncidentState]))
@click.option("--kind", type=click.Choice([k.value for k in IncidentKind]))
@_JSON
@_AS
@pass_state
def incident_list(
    st: _State, state: str | None, kind: str | None, as_json: bool, actor: str | None
) -> None:
    """The log, newest first: every incident for those who manage them, your own reports for
    everyone else."""
    found = inc.incidents(
        st.rt,
        _user(st, actor),
        state=IncidentState(state) if state else None,
        kind=IncidentKind(kind) if kind else None,
    )
    if as_json:
        click.echo(json.dumps([_incident_json(i) for i in found], ensure_ascii=False))
        return
    for i in found:
        click.echo(
            f"{i.id}\t{i.kind.value}\t{i.state.value}\t{_when(i.reported_at)}\t{i.reported_by}"
        )


@incident.command("show")
@click.argument("incident_id", type=int)
@_AS
@pass_state
def incident_show(st: _State, incident_id: int, actor: str | None) -> None:
    """One incident with its actions, as JSON."""
    i = inc.one(st.rt, _user(st, actor), incident_id)
    click.echo(json.dumps(_incident_json(i), ensure_ascii=False, indent=2))


@incident.command("act")
@click.argument("incident_id", type=int)
@click.argument("text")
@_AS
@pass_state
def incident_act(st: _State, incident_id: int, text: str, actor: str | None) -> None:
    """Record an action taken on an open incident (incident.manage)."""
    i = inc.act(st.rt, _user(st, actor), incident_id, text)
    click.echo(f"incident {i.id}: {len(i.actions)} actions")


@incident.command("close")
@click.argument("incident_id", type=int)
@click.argument("summary")
@_AS
@pass_state
def incident_close(st: _State, incident_id: int, summary: str, actor: str | None) -> None:
    """Close an open incident with a closing summary (incident.manage)."""
    i = inc.close(st.rt, _user(st, actor), incident_id, summary)
    click.echo(f"incident {i.id} closed")
