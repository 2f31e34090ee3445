"""``dangan export`` and ``dangan import``: open transfer packages (BagIt bags; docs/transfer.md).
Imported by ``api/cli.py``, which they are part of."""

from __future__ import annotations

import json
from pathlib import Path

import click

from api.cli import _person, _State, cli, pass_state
from api.services.transfer import ExportSelection, export_bag
from api.services.transfer_import import import_bag
from catalog import UserInfo
from dangan.errors import InvalidInputError

__all__ = ["export", "import_"]


def _user(st: _State, actor: str) -> UserInfo:
    _who, person = _person(st, actor)
    if person is None:  # pragma: no cover - _person returns a user for a name
        raise InvalidInputError("--as USER is needed")
    return person


@cli.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The bag's directory, which must not exist yet (made with mode 0700).",
)
@click.option("--code", "codes", multiple=True, metavar="CODE", help="A record; repeat for more.")
@click.option("--query", default=None, help="Records a search finds (the search's syntax).")
@click.option("--type", "business_type", default=None, metavar="T", help="Of this business type.")
@click.option("--year-from", type=int, default=None, metavar="Y", help="Of this year or later.")
@click.option("--year-to", type=int, default=None, metavar="Y", help="Of this year or earlier.")
@click.option("--all", "everything", is_flag=True, help="Every record USER may read.")
@click.option(
    "--organization",
    default="学籍档案室",
    show_default=True,
    help="The bag's Source-Organization.",
)
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@click.option(
    "--as", "actor", required=True, metavar="USER", help="The user exporting (the policy applies)."
)
@pass_state
def export(
    st: _State,
    out: Path,
    codes: tuple[str, ...],
    query: str | None,
    business_type: str | None,
    year_from: int | None,
    year_to: int | None,
    everything: bool,
    organization: str,
    as_json: bool,
    actor: str,
) -> None:
    """Write records as an open transfer package: a BagIt bag of their originals and access
    PDFs (unencrypted), metadata (JSON and XML), OCR text and audit events, with SHA-256 and
    SM3 manifests; it validates with `bagit.py --validate`.

    The records are those named by --code plus those matching every filter given (--query,
    --type, --year-from, --year-to, or --all). USER needs the export right and must be allowed
    to read each record: contract-class records are a director's alone. Records still in
    intake are skipped when a filter finds them and refused when named. Each record exported
    is audited as a read of its content, the export as one event.
    """
    st.rt.require_initialised()
    selection = ExportSelection(
        codes=codes,
        query=query,
        business_type=business_type,
        year_from=year_from,
        year_to=year_to,
        everything=everything,
    )
    report = export_bag(st.rt, selection, out, _user(st, actor), organization=organization)
    if as_json:
        doc = {
            "bag": str(report.path),
            "export_id": report.export_id,
            "records": list(report.records),
            "skipped": list(report.skipped),
            "pages": report.pages,
            "audit_events": report.audit_events,
            "payload_oxum": f"{report.payload_bytes}.{report.payload_files}",
            "tagmanifest_sha256": report.tagmanifest_sha256,
            "check_outcome": report.check_outcome,
        }
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    for code in report.records:
        click.echo(code)
    for code in report.skipped:
        click.echo(f"skipped {code}: still in intake", err=True)
    if report.check_outcome == "fail":
        click.echo(
            "the four-property check found problems: see data/check/fourprop.html in the bag",
            err=True,
        )
    click.echo(
        f"exported {len(report.records)} records ({report.pages} pages, "
        f"{report.payload_files} files, {report.payload_bytes} bytes) to {report.path}",
        err=True,
    )


@cli.command("import")
@click.argument("bag", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@click.option(
    "--as", "actor", required=True, metavar="USER", help="The user importing (the policy applies)."
)
@pass_state
def import_(st: _State, bag: Path, as_json: bool, actor: str) -> None:
    """Take the transfer package BAG (from `dangan export`) into this archive.

    The whole bag is checked first (every SHA-256 and SM3 digest), then every record in it;
    then all are stored or none. Each record keeps its archive code (a code taken here refuses
    the bag, exit 6), its dates, metadata and OCR text; its original and access PDF are stored
    encrypted in both stores. USER must be allowed to create records of each record's class.
    """
    st.rt.require_initialised()
    report = import_bag(st.rt, bag, _user(st, actor))
    if as_json:
        doc = {
            "bag": str(report.bag),
            "export_id": report.export_id,
            "records": list(report.records),
            "pages": report.pages,
            "indexed": report.indexed,
        }
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    for code in report.records:
        click.echo(code)
    click.echo(f"imported {len(report.records)} records ({report.pages} pages)", err=True)
