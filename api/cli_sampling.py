"""``dangan audit sample`` and the rest of the quarterly sampling audit on the command line:
items, the manual checklist, findings and the report (docs/sampling.md). Imported by
``api/cli.py``, whose ``audit`` group it extends.

Every command acts as a named user (``--as``): the policy decides as it does for the API.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path

import click

from api.cli import _State, audit, pass_state
from api.services import sampling as service
from api.services.intake import private_directory, receive_upload
from api.services.sampling_plan import parse_quarter
from api.services.sampling_report import report_csv, report_html, report_pdf
from catalog import FindingInfo, UserInfo, get_user, list_audits
from dangan.errors import InvalidInputError, NotFoundError

__all__ = [
    "audit_checklist",
    "audit_findings",
    "audit_items",
    "audit_report",
    "audit_sample",
    "finding",
]

_YES_NO = click.Choice(["yes", "no"])


def _as_user(st: _State, name: str) -> UserInfo:
    with st.rt.require_initialised().read() as s:
        user = get_user(s, name)
    if user.disabled:
        raise InvalidInputError(f"user {name!r} is disabled")
    return user


def _audit_id(st: _State, quarter: str) -> int:
    q = str(parse_quarter(quarter))
    with st.rt.require_initialised().read() as s:
        found = next((a for a in list_audits(s) if a.quarter == q), None)
    if found is None:
        raise NotFoundError(f"{q} has not been drawn; draw it with `dangan audit sample`")
    return found.id


_as_option = click.option(
    "--as", "actor", metavar="USER", required=True, help="The user this is done as."
)


@audit.command("sample")
@click.option("--quarter", required=True, metavar="YYYYQn", help="The quarter, e.g. 2026Q3.")
@click.option(
    "--dry-run", is_flag=True, help="Print the sample, one archive code a line; keep nothing."
)
@click.option("--deep", is_flag=True, help="Decrypt every copy and render every page.")
@_as_option
@pass_state
def audit_sample(st: _State, quarter: str, dry_run: bool, deep: bool, actor: str) -> None:
    """Draw the quarter's sampling audit (sampling.run): a sample sized by the acceptance
    rule (an error rate of 5% or more shows a defect with 95% confidence), stratified by
    business type and clerk, seeded by the quarter and the audit trail's head; then each
    item's automatic checks. You see the items of the records you may see."""
    user = _as_user(st, actor)
    if dry_run:
        for code in service.preview(st.rt, user, quarter):
            click.echo(code)
        return
    audit_info = service.draw(st.rt, user, quarter, deep=deep)
    view = service.audit_view(st.rt, user, audit_info.id)
    failed = sum(1 for i in view.items if i.auto_outcome == "fail")
    click.echo(
        f"{audit_info.quarter}: audit {audit_info.id}, {len(view.items)} items drawn; "
        f"{failed} failed an automatic check; seed {audit_info.seed[:16]}… "
        f"(trail head {audit_info.head_id})"
    )


@audit.command("items")
@click.option("--quarter", required=True, metavar="YYYYQn")
@_as_option
@pass_state
def audit_items(st: _State, quarter: str, actor: str) -> None:
    """List a drawn quarter's items: id, archive code, automatic outcome, checklist."""
    user = _as_user(st, actor)
    view = service.audit_view(st.rt, user, _audit_id(st, quarter))
    for i in view.items:
        manual = (
            "unchecked"
            if i.manual is None
            else ",".join(f"{k}={'yes' if v else 'no'}" for k, v in i.manual.items())
        )
        flag = "DEFECT" if i.is_defective else "ok"
        click.echo(f"{i.id}\t{i.archive_code}\t{i.auto_outcome}\t{manual}\t{flag}")
    e = view.estimate
    click.echo(
        f"{e.sampled} items, {e.defective} defective: error rate {100 * e.rate:.1f}% "
        f"(95% CI {100 * e.low:.1f}–{100 * e.high:.1f}%)",
        err=True,
    )


@audit.command("checklist")
@click.argument("item_id", type=int)
@click.option("--legible", type=_YES_NO, required=True, help="The scan is legible.")
@click.option("--matches-paper", type=_YES_NO, required=True, help="It matches the paper.")
@click.option("--location-right", type=_YES_NO, required=True, help="The paper is where noted.")
@click.option("--note", default=None)
@_as_option
@pass_state
def audit_checklist(
    st: _State,
    item_id: int,
    legible: str,
    matches_paper: str,
    location_right: str,
    note: str | None,
    actor: str,
) -> None:
    """Record an item's manual checklist (sampling.check; a contract item: a director)."""
    user = _as_user(st, actor)
    answers = {
        "legible": legible == "yes",
        "matches_paper": matches_paper == "yes",
        "location_right": location_right == "yes",
    }
    item = service.manual_check(st.rt, user, item_id, answers, note=note)
    click.echo(f"{item.archive_code}: {'defective' if item.is_defective else 'ok'}")


@audit.command("findings")
@click.option("--open", "open_only", is_flag=True, help="Only findings not closed.")
@_as_option
@pass_state
def audit_findings(st: _State, open_only: bool, actor: str) -> None:
    """List the findings you deal with: id, code, severity, state, owner, due."""
    user = _as_user(st, actor)
    now = dt.datetime.now(dt.UTC)
    for f in service.findings_for(st.rt, user, open_only=open_only):
        late = " OVERDUE" if f.is_overdue(now) else ""
        click.echo(
            f"{f.id}\t{f.archive_code}\t{f.severity.value}\t{f.state.value}\t{f.owner}\t"
            f"{f.due_at:%Y-%m-%d}{late}"
        )


@audit.group("finding")
def finding() -> None:
    """File, answer and close the sampling audit's findings."""


def _show(f: FindingInfo) -> None:
    click.echo(f"finding {f.id} on {f.archive_code}: {f.state.value}, due {f.due_at:%Y-%m-%d}")


@finding.command("file")
@click.argument("item_id", type=int)
@click.option("--severity", type=click.Choice(["minor", "major", "critical"]), default="minor")
@click.option("--summary", required=True, help="What is wrong.")
@click.option("--owner", default=None, help="Who must fix it; default: the record's clerk.")
@_as_option
@pass_state
def finding_file(
    st: _State, item_id: int, severity: str, summary: str, owner: str | None, actor: str
) -> None:
    """File a finding against a sampled item, due in 7 days (finding.manage)."""
    user = _as_user(st, actor)
    _show(service.file(st.rt, user, item_id, severity=severity, summary=summary, owner=owner))


def _evidence_call(
    st: _State, path: Path | None, act: Callable[[service.EvidenceUpload | None], FindingInfo]
) -> FindingInfo:
    """Run ``act(evidence)`` with the file received into a private directory (or ``None``)."""
    if path is None:
        return act(None)
    with private_directory() as tmp, path.open("rb") as fh:
        upload = receive_upload(fh, Path(tmp), max_bytes=st.rt.settings.intake.max_bytes)
        return act(service.EvidenceUpload(upload, path.name))


_FILE = click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Evidence: a scan, photo or PDF.",
)


@finding.command("answer")
@click.argument("finding_id", type=int)
@click.option("--note", default="", help="What was fixed.")
@_FILE
@_as_option
@pass_state
def finding_answer(st: _State, finding_id: int, note: str, path: Path | None, actor: str) -> None:
    """Answer a finding you own with what was fixed (finding.respond)."""
    user = _as_user(st, actor)
    _show(
        _evidence_call(
            st,
            path,
            lambda ev: service.answer(st.rt, user, finding_id, note=note, evidence=ev),
        )
    )


@finding.command("close")
@click.argument("finding_id", type=int)
@click.option("--note", default="", help="What was checked.")
@_FILE
@_as_option
@pass_state
def finding_close(st: _State, finding_id: int, note: str, path: Path | None, actor: str) -> None:
    """Close a finding with evidence: a note, a file, or the owner's answer (finding.manage)."""
    user = _as_user(st, actor)
    _show(
        _evidence_call(
            st,
            path,
            lambda ev: service.close(st.rt, user, finding_id, note=note, evidence=ev),
        )
    )


@audit.command("report")
@click.option("--quarter", required=True, metavar="YYYYQn")
@click.option(
    "--format", "fmt", type=click.Choice(["html", "pdf", "csv"]), default="html", show_default=True
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report here (needed for pdf); else to standard output.",
)
@_as_option
@pass_state
def audit_report(st: _State, quarter: str, fmt: str, out: Path | None, actor: str) -> None:
    """Write a drawn quarter's report: the estimated error rate with its 95% interval, the
    items, the open findings and overdue break-glass grants (sampling.run)."""
    if fmt == "pdf" and out is None:
        raise InvalidInputError("--format pdf needs --out FILE")
    user = _as_user(st, actor)
    view = service.audit_view(st.rt, user, _audit_id(st, quarter))
    service.note_report(st.rt, user, view, fmt)
    body: bytes
    if fmt == "csv":
        body = report_csv(view).encode("utf-8-sig")
    elif fmt == "html":
        body = report_html(view).encode()
    else:
        body = report_pdf(view)
    if out is not None:
        out.write_bytes(body)
        click.echo(f"report written to {out}", err=True)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
