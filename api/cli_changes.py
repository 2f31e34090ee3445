"""``dangan change-request``: asking for a change of a record's key fields, and a director's
decision on it (issue #7). Imported by ``api/cli.py``, which it is part of."""

from __future__ import annotations

import json
from typing import Any

import click

from api.cli import _person, _State, cli, pass_state
from api.services import changes as svc
from catalog import ChangeRequestInfo, ChangeState, SecurityClass, UserInfo
from dangan.errors import InvalidInputError

__all__ = ["change_request"]


def _user(st: _State, actor: str | None) -> UserInfo:
    _who, person = _person(st, actor)
    if person is None:
        raise InvalidInputError("--as USER is needed: the policy decides who may do this")
    return person


def _request_json(r: ChangeRequestInfo) -> dict[str, Any]:
    return {
        "id": r.id,
        "archive_code": r.archive_code,
        "code_at_filing": r.code_at_filing,
        "state": r.state.value,
        "changes": dict(r.changes),
        "before": dict(r.base),
        "reason": r.reason,
        "filed_by": r.filed_by,
        "filed_at": r.filed_at.isoformat(),
        "decided_by": r.decided_by,
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "decision_reason": r.decision_reason,
        "result_code": r.result_code,
    }


def _changes_text(r: ChangeRequestInfo) -> str:
    return ", ".join(
        f"{name}={value if value is not None else '-'}" for name, value in r.changes.items()
    )


@cli.group("change-request")
def change_request() -> None:
    """Key changes (student number and name, business type, year, archive code, security
    class): filed with a reason, approved or rejected by a director."""


@change_request.command("file")
@click.argument("code")
@click.option("--student-no", help="The student number asked for ('' clears it).")
@click.option("--student-name", help="The student's name asked for ('' clears it).")
@click.option("--type", "business_type", help="The business type asked for (a new code).")
@click.option("--year", type=int, help="The year asked for (a new code).")
@click.option(
    "--code", "archive_code", help="The archive code asked for (brings its year and type)."
)
@click.option(
    "--security-class", type=click.Choice([c.value for c in SecurityClass]), help="The class."
)
@click.option("--reason", required=True, help="Why the record is wrong as it stands.")
@click.option("--as", "actor", metavar="USER", required=True, help="The user filing it.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@pass_state
def change_request_file(
    st: _State,
    code: str,
    student_no: str | None,
    student_name: str | None,
    business_type: str | None,
    year: int | None,
    archive_code: str | None,
    security_class: str | None,
    reason: str,
    actor: str,
    as_json: bool,
) -> None:
    """Ask for a change of record CODE's key fields (record.request_key_change); a director
    decides. A new type or year gives the record the next code of that year and type unless
    --code names one; the old code keeps finding the record."""
    person = _user(st, actor)
    asked = {
        "student_no": student_no,
        "student_name": student_name,
        "business_type": business_type,
        "year": year,
        "archive_code": archive_code,
        "security_class": security_class,
    }
    changes = {name: value for name, value in asked.items() if value is not None}
    if not changes:
        raise InvalidInputError("name at least one key field to change")
    filed = svc.file_request(st.rt, code, person, changes, reason=reason)
    if as_json:
        click.echo(json.dumps(_request_json(filed), ensure_ascii=False))
        return
    click.echo(f"filed {filed.id}\t{filed.archive_code}\t{_changes_text(filed)}")


@change_request.command("list")
@click.option("--all", "every_state", is_flag=True, help="Decided requests too.")
@click.option("--record", "code", metavar="CODE", help="Only those about this record.")
@click.option("--as", "actor", metavar="USER", required=True, help="The user asking.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of text.")
@pass_state
def change_request_list(
    st: _State, every_state: bool, code: str | None, actor: str, as_json: bool
) -> None:
    """Open change requests, oldest first: ID, record, what is asked, who filed it (a director
    sees all; others their own, or with --record every one about that record)."""
    person = _user(st, actor)
    states = None if every_state else (ChangeState.open,)
    found = svc.requests(st.rt, person, states=states, code=code)
    if as_json:
        click.echo(json.dumps([_request_json(r) for r in found], ensure_ascii=False))
        return
    for r in found:
        click.echo(f"{r.id}\t{r.archive_code}\t{_changes_text(r)}\t{r.filed_by}\t{r.state.value}")


@change_request.command("approve")
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why (kept with the decision).")
@click.option("--as", "actor", metavar="USER", required=True, help="The director approving.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@pass_state
def change_request_approve(
    st: _State, request_id: int, reason: str, actor: str, as_json: bool
) -> None:
    """Approve change request REQUEST_ID and apply it to its record (record.update_key_fields),
    audited with before and after. A request whose record changed after it was filed is
    refused as stale (exit 6)."""
    person = _user(st, actor)
    change = svc.approve(st.rt, request_id, person, reason=reason)
    if as_json:
        doc = {
            "request": _request_json(change.request),
            "archive_code": change.record.archive_code,
            "former_code": change.former_code,
            "before": dict(change.before),
            "after": dict(change.after),
        }
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    renamed = f" (was {change.former_code})" if change.former_code else ""
    click.echo(f"approved {request_id}\t{change.record.archive_code}{renamed}")


@change_request.command("reject")
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why the record stays as it is.")
@click.option("--as", "actor", metavar="USER", required=True, help="The director rejecting.")
@pass_state
def change_request_reject(st: _State, request_id: int, reason: str, actor: str) -> None:
    """Reject change request REQUEST_ID (record.update_key_fields); the record is unchanged."""
    person = _user(st, actor)
    done = svc.reject(st.rt, request_id, person, reason=reason)
    click.echo(f"rejected {done.id}\t{done.archive_code}")
