"""``dangan check``: the four-property check (四性检测) of records and of the archive
(docs/standards.md). Imported by ``api/cli.py``, which it is part of."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from api.cli import _person, _State, cli, pass_state
from api.services.fourprop import (
    CheckReport,
    Outcome,
    RecordCheck,
    Selection,
    explain_code_gap,
    run_check,
)
from api.services.fourprop_report import report_bytes
from api.services.quality_backfill import backfill_quality
from dangan.errors import ExitCode, InvalidInputError

__all__ = ["check", "explain_gap_command", "parse_years", "quality", "quality_backfill"]

_YEARS = re.compile(r"^(\d{4})(?:\.\.(\d{4}))?$")
_MARK = {
    Outcome.passed: "ok  ",
    Outcome.warn: "WARN",
    Outcome.fail: "FAIL",
    Outcome.skipped: "skip",
}


def parse_years(text: str | None) -> tuple[int | None, int | None]:
    """``2023`` or ``2019..2023`` into a year range; ``None``: no bound."""
    if not text:
        return None, None
    m = _YEARS.match(text.strip())
    if not m:
        raise InvalidInputError("--years is a year (2023) or a range (2019..2023)")
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else first
    if last < first:
        raise InvalidInputError("--years: the range ends before it starts")
    return first, last


def _text(report: CheckReport, *, verbose: bool) -> str:
    lines = []
    for item in report.archive:
        lines.append(f"{_MARK[item.outcome]}  {item.rule:<3} {item.name}: {item.detail}")
    for record in report.records:
        lines.append(_record_line(record))
        for item in record.items:
            if verbose or item.outcome in (Outcome.fail, Outcome.warn):
                lines.append(
                    f"      {_MARK[item.outcome]}  {item.rule:<3} {item.name}: {item.detail}"
                )
    for code in report.not_found:
        lines.append(f"FAIL  {code}: no such record")
    counts = report.counts()
    lines.append(
        f"{len(report.records)} records checked: {counts['pass']} pass, {counts['warn']} warn, "
        f"{counts['fail']} fail; the archive: {_MARK[_archive_outcome(report)].strip()}"
    )
    return "\n".join(lines)


def _archive_outcome(report: CheckReport) -> Outcome:
    worst = Outcome.passed
    for item in report.archive:
        if item.outcome is Outcome.fail:
            return Outcome.fail
        if item.outcome is Outcome.warn:
            worst = Outcome.warn
    return worst


def _record_line(record: RecordCheck) -> str:
    props = " ".join(f"{p.value[:4]}:{o.value}" for p, o in record.by_property().items())
    return f"{_MARK[record.outcome]}  {record.archive_code}  {props}"


@cli.command("check")
@click.argument("codes", nargs=-1)
@click.option("--batch", is_flag=True, help="Check many records: all, or --type / --years.")
@click.option("--type", "business_type", metavar="TYPE", help="With --batch: one business type.")
@click.option("--years", metavar="YEAR[..YEAR]", help="With --batch: a year or a range.")
@click.option("--quick", is_flag=True, help="Skip decrypting and rendering (copies by hash only).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv", "html", "pdf"]),
    default="text",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report here (needed for pdf); else to standard output.",
)
@click.option("-v", "--verbose", is_flag=True, help="Text: list passed items too.")
@click.option("--as", "actor", metavar="USER", help="Run as this user (check.run).")
@pass_state
def check(
    st: _State,
    codes: tuple[str, ...],
    batch: bool,
    business_type: str | None,
    years: str | None,
    quick: bool,
    fmt: str,
    out: Path | None,
    verbose: bool,
    actor: str | None,
) -> None:
    """The four-property check (四性检测: authenticity, integrity, usability, security) of the
    given records, or with --batch of many, and of the archive itself. Exits 1 when anything
    fails. Without --as it runs as the system and checks every record."""
    if codes and (batch or business_type or years):
        raise InvalidInputError("give archive codes or --batch, not both")
    if not codes and not batch:
        raise InvalidInputError("give one or more archive codes, or --batch")
    if fmt == "pdf" and out is None:
        raise InvalidInputError("--format pdf needs --out FILE")
    year_from, year_to = parse_years(years)
    st.rt.require_initialised()
    who, person = _person(st, actor)
    selection = Selection(tuple(codes), business_type, year_from, year_to)
    report = run_check(st.rt, selection, user=person, actor=who, deep=not quick)
    body = _text(report, verbose=verbose).encode() if fmt == "text" else report_bytes(report, fmt)
    if out is not None:
        out.write_bytes(body)
        click.echo(f"report written to {out}: {report.outcome.value}", err=True)
    else:
        sys.stdout.buffer.write(body + (b"\n" if not body.endswith(b"\n") else b""))
        sys.stdout.flush()
    if report.outcome is Outcome.fail or report.not_found:
        sys.exit(int(ExitCode.check_failed))


@cli.command("explain-gap")
@click.argument("code")
@click.option("--reason", required=True, help="Why no record holds this code (kept in the trail).")
@click.option("--as", "actor", metavar="USER", required=True, help="The director explaining it.")
@pass_state
def explain_gap_command(st: _State, code: str, reason: str, actor: str) -> None:
    """Explain an archive code no record holds (a lost paper, a number the old register
    skipped), so that the four-property check's rule I4 no longer counts it as a gap."""
    st.rt.require_initialised()
    _who, person = _person(st, actor)
    assert person is not None  # noqa: S101 - --as is required
    explain_code_gap(st.rt, code, reason, person)
    click.echo(f"{code}: explained")


@cli.group()
def quality() -> None:
    """The digitization quality gate (docs/quality.md)."""


@quality.command("backfill")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="The most records measured in this run.",
)
@click.option(
    "--as", "actor", metavar="USER", help="Recorded in the audit trail (default: system)."
)
@pass_state
def quality_backfill(st: _State, limit: int, actor: str | None) -> None:
    """Measure the pages read before the quality gate existed (no OCR again); run it until
    it says 0 records."""
    st.rt.require_initialised()
    who, _person_info = _person(st, actor)
    report = backfill_quality(st.rt, actor=who, limit=limit)
    for line in report.failed:
        click.echo(f"failed {line}", err=True)
    click.echo(f"measured {report.pages} pages of {report.records} records")
    if report.failed:
        sys.exit(int(ExitCode.operational))
