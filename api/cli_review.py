"""``dangan review``: the intake review gates (材料初审 → 信息录入 → 系统校验 → 复核,
docs/review.md) from the command line. Imported by ``api/cli.py``, which it is part of.

Every command acts as a person (``--as USER``, required): the policy decides what they may
do, exactly as over the API, and a refusal is audited."""

from __future__ import annotations

import json

import click

from api.cli import _person, _State, cli, pass_state
from api.services.review import decide, resubmit, review_of, review_queue
from catalog import ReviewGate, ReviewInfo, UserInfo
from catalog import ReviewState as _ReviewState
from dangan.errors import InvalidInputError

__all__ = ["review"]

_GATES = [g.value for g in ReviewGate]


def _user(st: _State, actor: str | None) -> UserInfo:
    if actor is None:
        raise InvalidInputError("say who decides: --as USER")
    st.rt.require_initialised()
    _, person = _person(st, actor)
    assert person is not None  # noqa: S101 - _person gives a user for a name
    return person


def _line(code: str, r: ReviewInfo | None) -> str:
    if r is None:
        return f"{code}  - (entered before the review gates)"
    where = f" at {r.gate.value}" if r.gate else ""
    reason = f"  reason: {r.reason}" if r.reason else ""
    return f"{code}  {r.state.value}{where}  round {r.round}{reason}"


def _as_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("--as", "actor", metavar="USER", help="The person deciding (required).")(f)


@cli.group()
def review() -> None:
    """The intake review gates: list, pass, send back, resubmit (docs/review.md)."""


@review.command("list")
@click.option("--state", type=click.Choice([s.value for s in _ReviewState]), default=None)
@click.option("--gate", type=click.Choice(_GATES), default=None)
@click.option("--mine", is_flag=True, help="Only the records you entered.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_as_option
@pass_state
def review_list(
    st: _State,
    state: str | None,
    gate: str | None,
    mine: bool,
    limit: int,
    as_json: bool,
    actor: str | None,
) -> None:
    """The reviews of the records you may see, the longest waiting first, with the system
    check's findings."""
    user = _user(st, actor)
    queue = review_queue(
        st.rt,
        user,
        state=_ReviewState(state) if state else None,
        gate=ReviewGate(gate) if gate else None,
        mine=mine,
        page_size=limit,
    )
    for row in queue.rows:
        if as_json:
            click.echo(
                json.dumps(
                    {"archive_code": row.archive_code, **row.review.as_dict()}, ensure_ascii=False
                )
            )
            continue
        click.echo(_line(row.archive_code, row.review))
        for f in row.review.findings:
            click.echo(f"    {f['outcome']:<9} {f['rule']:<3} {f['name']}: {f['detail']}")
    if not as_json:
        click.echo(f"{queue.total} records", err=True)


@review.command("show")
@click.argument("code")
@_as_option
@pass_state
def review_show(st: _State, code: str, actor: str | None) -> None:
    """Where one record stands in its review."""
    user = _user(st, actor)
    click.echo(_line(code, review_of(st.rt, code, user)))


@review.command("pass")
@click.argument("code")
@click.option("--gate", type=click.Choice(_GATES), default=None, help="The gate you mean.")
@click.option("--note", default=None, help="A remark kept with the decision.")
@_as_option
@pass_state
def review_pass(
    st: _State, code: str, gate: str | None, note: str | None, actor: str | None
) -> None:
    """Pass the gate the record waits at: 材料初审 and 信息录入 as its clerk, 复核 as a
    supervisor or director."""
    user = _user(st, actor)
    info = decide(st.rt, code, user, "pass", reason=note, gate=ReviewGate(gate) if gate else None)
    click.echo(_line(code, info))


@review.command("return")
@click.argument("code")
@click.option("--reason", required=True, help="Why the record goes back to its clerk.")
@click.option("--gate", type=click.Choice(_GATES), default=None, help="The gate you mean.")
@_as_option
@pass_state
def review_return(st: _State, code: str, reason: str, gate: str | None, actor: str | None) -> None:
    """Send the record back to its clerk with a reason."""
    user = _user(st, actor)
    info = decide(
        st.rt, code, user, "return", reason=reason, gate=ReviewGate(gate) if gate else None
    )
    click.echo(_line(code, info))


@review.command("resubmit")
@click.argument("code")
@_as_option
@pass_state
def review_resubmit(st: _State, code: str, actor: str | None) -> None:
    """Send a corrected record back into review, as the clerk who entered it."""
    user = _user(st, actor)
    click.echo(_line(code, resubmit(st.rt, code, user)))
