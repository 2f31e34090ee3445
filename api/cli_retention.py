"""``dangan retention``, ``hold``, ``disposition`` and ``certificate``: retention schedules,
legal holds, approving disposals and checking destruction certificates (docs/retention.md).
Imported by ``api/cli.py``, which they are part of."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from api.cli import _person, _State, cli, pass_state
from api.services import retention as svc
from catalog import CertificateInfo, HoldInfo, ProposalInfo, ProposalState, UserInfo
from dangan.errors import InvalidInputError

__all__ = ["certificate", "disposition", "hold", "retention"]

_YEARS = re.compile(r"^(\d{4})(?:\.\.(\d{4}))?$")


def _user(st: _State, actor: str | None) -> tuple[str, UserInfo]:
    who, person = _person(st, actor)
    if person is None:
        raise InvalidInputError("--as USER is needed: the policy decides who may do this")
    return who, person


@cli.group()
def retention() -> None:
    """Retention schedules: how long each business type is kept, counted from when."""


@retention.command("run")
@click.option("--as", "actor", metavar="USER", help="Run as this user (retention.run).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@pass_state
def retention_run(st: _State, actor: str | None, as_json: bool) -> None:
    """Propose every record whose retention has run out for disposition (a director then
    approves or rejects), and finish approved disposals an interrupted run left. Held and
    permanent (永久) records are never proposed; running it again proposes nothing twice."""
    who, person = _person(st, actor)
    st.rt.require_initialised()
    run = svc.run_retention(st.rt, actor=who, user=person)
    scan = run.scan
    doc: dict[str, Any] = {
        "opened": [_proposal_json(p) for p in scan.opened],
        "already_open": len(scan.already_open),
        "held": len(scan.held),
        "withdrawn": scan.withdrawn,
        "recently_rejected": len(scan.recently_rejected),
        "awaiting_graduation_year": len(scan.awaiting_graduation_year),
        "finished": run.finished.disposed if run.finished else [],
    }
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    for p in scan.opened:
        click.echo(f"proposed {p.id}\t{p.archive_code}\t{p.retention.value}\tdue {p.due_year}")
    click.echo(
        f"{len(scan.opened)} proposed, {len(scan.already_open)} already proposed, "
        f"{len(scan.held)} held, {len(scan.awaiting_graduation_year)} waiting for a "
        "graduation year"
    )
    if run.finished and run.finished.certificate:
        click.echo(f"finished disposals: certificate {run.finished.certificate.id}")


@retention.command("schedule")
@pass_state
def retention_schedule(st: _State) -> None:
    """Each business type's retention period and trigger (record_date or graduation)."""
    st.rt.require_initialised()
    for s in svc.schedules(st.rt):
        default = " (default)" if s.trigger_is_default else ""
        state = "" if s.active else "\tinactive"
        click.echo(f"{s.business_type}\t{s.retention.value}\t{s.trigger.value}{default}{state}")


@retention.command("set")
@click.argument("business_type")
@click.option("--retention", "period", type=click.Choice(["永久", "30年", "10年"]))
@click.option("--trigger", type=click.Choice(["record_date", "graduation"]))
@click.option("--as", "actor", metavar="USER", help="The user (business_type.manage).")
@pass_state
def retention_set(
    st: _State, business_type: str, period: str | None, trigger: str | None, actor: str | None
) -> None:
    """Change BUSINESS_TYPE's retention period and/or what it is counted from."""
    who, person = _person(st, actor)
    s = svc.change_schedule(
        st.rt, business_type, retention=period, trigger=trigger, actor=who, user=person
    )
    click.echo(f"{s.business_type}\t{s.retention.value}\t{s.trigger.value}")


@retention.command("graduation")
@click.argument("student_no")
@click.argument("year", type=int)
@click.option("--as", "actor", metavar="USER", help="The user (record.update_metadata).")
@pass_state
def retention_graduation(st: _State, student_no: str, year: int, actor: str | None) -> None:
    """Record that student STUDENT_NO graduated in YEAR: periods counted from graduation
    start then."""
    who, person = _person(st, actor)
    svc.record_graduation(st.rt, student_no, year, actor=who, user=person)
    click.echo(f"{student_no}\tgraduated {year}")


# --- holds -----------------------------------------------------------------------------------


def _hold_line(h: HoldInfo) -> str:
    state = "active" if h.is_active else f"released {h.released_at:%Y-%m-%d} by {h.released_by}"
    return f"{h.id}\t{h.covers}\t{h.placed_by} {h.placed_at:%Y-%m-%d}\t{state}\t{h.reason}"


def _hold_json(h: HoldInfo) -> dict[str, Any]:
    return {
        "id": h.id,
        "scope": h.scope.value,
        "covers": h.covers,
        "reason": h.reason,
        "placed_by": h.placed_by,
        "placed_at": h.placed_at.isoformat(),
        "released_by": h.released_by,
        "released_at": h.released_at.isoformat() if h.released_at else None,
        "release_reason": h.release_reason,
    }


@cli.group()
def hold() -> None:
    """Legal holds: while one stands, no record it covers is proposed or disposed of."""


@hold.command("place")
@click.option("--record", "code", metavar="CODE", help="One record, by its archive code.")
@click.option("--student", "student_no", metavar="NO", help="Every record of a student.")
@click.option("--type", "business_type", metavar="T", help="Every record of a business type.")
@click.option("--years", metavar="YYYY..YYYY", help="Every record of these years (inclusive).")
@click.option("--reason", required=True, help="Why (kept with the hold).")
@click.option("--as", "actor", metavar="USER", required=True, help="The user (hold.place).")
@pass_state
def hold_place(
    st: _State,
    code: str | None,
    student_no: str | None,
    business_type: str | None,
    years: str | None,
    reason: str,
    actor: str,
) -> None:
    """Place a legal hold on one record, a student, a business type or a range of years."""
    who, person = _user(st, actor)
    span = None
    if years is not None:
        m = _YEARS.match(years.strip())
        if m is None:
            raise InvalidInputError("--years reads YYYY or YYYY..YYYY, e.g. 2019..2021")
        span = (int(m[1]), int(m[2] or m[1]))
    h = svc.place(
        st.rt,
        reason=reason,
        actor=who,
        user=person,
        archive_code=code,
        student_no=student_no,
        business_type=business_type,
        years=span,
    )
    click.echo(f"hold {h.id} placed on {h.covers}")


@hold.command("list")
@click.option("--all", "include_released", is_flag=True, help="Released holds too.")
@click.option("--as", "actor", metavar="USER", help="The user (hold.place or hold.release).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of text.")
@pass_state
def hold_list(st: _State, include_released: bool, actor: str | None, as_json: bool) -> None:
    """The legal holds: what each covers, who placed it and why."""
    _who, person = _person(st, actor)
    st.rt.require_initialised()
    found = svc.holds(st.rt, person, include_released=include_released)
    if as_json:
        click.echo(json.dumps([_hold_json(h) for h in found], ensure_ascii=False))
        return
    for h in found:
        click.echo(_hold_line(h))


@hold.command("release")
@click.argument("hold_id", type=int)
@click.option("--reason", required=True, help="Why it is released.")
@click.option("--as", "actor", metavar="USER", required=True, help="The user (hold.release).")
@pass_state
def hold_release(st: _State, hold_id: int, reason: str, actor: str) -> None:
    """Release legal hold HOLD_ID; it stays on record as history."""
    who, person = _user(st, actor)
    h = svc.release(st.rt, hold_id, reason=reason, actor=who, user=person)
    click.echo(f"hold {h.id} on {h.covers} released")


# --- disposition -----------------------------------------------------------------------------


def _proposal_json(p: ProposalInfo) -> dict[str, Any]:
    return {
        "id": p.id,
        "archive_code": p.archive_code,
        "business_type": p.business_type,
        "year": p.year,
        "state": p.state.value,
        "retention": p.retention.value,
        "trigger": p.trigger.value,
        "trigger_year": p.trigger_year,
        "due_year": p.due_year,
        "proposed_by": p.proposed_by,
        "proposed_at": p.proposed_at.isoformat(),
        "decided_by": p.decided_by,
        "certificate_id": p.certificate_id,
    }


@cli.group()
def disposition() -> None:
    """Disposition: a director approves (destroying the records for good) or rejects."""


@disposition.command("list")
@click.option("--all", "every_state", is_flag=True, help="Decided proposals too.")
@click.option("--as", "actor", metavar="USER", required=True, help="The user (a director).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of text.")
@pass_state
def disposition_list(st: _State, every_state: bool, actor: str, as_json: bool) -> None:
    """Open disposition proposals: ID, archive code, type, period, trigger year, due since."""
    _who, person = _user(st, actor)
    states = tuple(ProposalState) if every_state else (ProposalState.open,)
    found = svc.proposals(st.rt, person, states=states)
    if as_json:
        click.echo(json.dumps([_proposal_json(p) for p in found], ensure_ascii=False))
        return
    for p in found:
        click.echo(
            f"{p.id}\t{p.archive_code}\t{p.retention.value} from {p.trigger.value} "
            f"{p.trigger_year}\tdue {p.due_year}\t{p.state.value}"
        )


def _write_certificate(st: _State, cert: CertificateInfo, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{cert.id}.json"
    pdf_path = out / f"{cert.id}.pdf"
    json_path.write_text(cert.document, encoding="utf-8")
    pdf_path.write_bytes(svc.certificate_pdf_bytes(st.rt, cert))
    return [json_path, pdf_path]


@disposition.command("approve")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--reason", help="Why (kept with the decision).")
@click.option("--as", "actor", metavar="USER", required=True, help="The director approving.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(),
    show_default=True,
    help="Where the certificate's JSON and PDF are written.",
)
@pass_state
def disposition_approve(
    st: _State, ids: tuple[int, ...], reason: str | None, actor: str, out: Path
) -> None:
    """Approve proposals IDS and destroy their records for good: both copies and the data
    keys (crypto-shredding), the index entries; the codes stay, never reused. Writes the
    signed destruction certificate (JSON and PDF). A held record refuses the whole batch."""
    _who, person = _user(st, actor)
    outcome = svc.approve(st.rt, list(ids), user=person, reason=reason)
    for code in outcome.disposed:
        click.echo(f"destroyed {code}")
    for code in outcome.withheld:
        click.echo(f"not destroyed (legal hold): {code}", err=True)
    if outcome.copies_left:
        click.echo(
            f"{len(outcome.copies_left)} unreadable copies remain in an unreachable store; "
            "run `dangan retention run` when it is back",
            err=True,
        )
    if outcome.certificate is not None:
        for path in _write_certificate(st, outcome.certificate, out):
            click.echo(f"certificate {path}")


@disposition.command("reject")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--reason", required=True, help="Why the records are kept.")
@click.option("--as", "actor", metavar="USER", required=True, help="The director rejecting.")
@pass_state
def disposition_reject(st: _State, ids: tuple[int, ...], reason: str, actor: str) -> None:
    """Keep the records of proposals IDS; they are not proposed again for a year."""
    _who, person = _user(st, actor)
    for p in svc.reject(st.rt, list(ids), user=person, reason=reason):
        click.echo(f"kept {p.archive_code}")


# --- certificates ----------------------------------------------------------------------------


@cli.group()
def certificate() -> None:
    """Destruction certificates: export them, check them, and the key that signs them."""


@certificate.command("verify")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--key",
    "key_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The public key (PEM, from `dangan certificate key`); else this instance's key.",
)
@pass_state
def certificate_verify(st: _State, file: Path, key_file: Path | None) -> None:
    """Check FILE (a certificate's JSON or PDF): signed by the trusted key and unchanged
    since it was issued. Exit 0 when it holds, 1 when it does not."""
    data = file.read_bytes()
    key_pem = key_file.read_bytes() if key_file is not None else None
    verified = svc.verify_file(None if key_pem else st.rt, data, key_pem=key_pem)
    click.echo(
        f"OK: certificate {verified.certificate_id} ({verified.kind}), signed by key "
        f"{verified.key_id}, {len(verified.archive_codes)} records"
    )


@certificate.command("key")
@click.option("--as", "actor", metavar="USER", help="Recorded if the key is made now.")
@pass_state
def certificate_key(st: _State, actor: str | None) -> None:
    """Print the instance's public signing key (PEM) for auditors to verify with."""
    who, _unused = _person(st, actor)
    st.rt.require_initialised()
    click.echo(svc.public_key_pem(st.rt, actor=who), nl=False)


@certificate.command("show")
@click.argument("certificate_id")
@click.option("--as", "actor", metavar="USER", required=True, help="The user (a director).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(),
    show_default=True,
    help="Where the JSON and PDF are written.",
)
@pass_state
def certificate_show(st: _State, certificate_id: str, actor: str, out: Path) -> None:
    """Write certificate CERTIFICATE_ID again, as issued (JSON) and as a PDF."""
    _who, person = _user(st, actor)
    cert = svc.certificate(st.rt, certificate_id, person)
    for path in _write_certificate(st, cert, out):
        click.echo(f"certificate {path}")
