"""``dangan backup`` and ``dangan restore``: catalog backups into the vault, and rebuilding the
catalog and the index from the vault alone. Imported by ``api/cli.py``, which they are part of.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from api.cli import _require_system, _State, cli, pass_state
from api.services.backups import list_backups, run_backup
from api.services.restore import restore_from_vault
from backup import read_manifest
from catalog import Action
from dangan.config import load_settings
from dangan.errors import DanganError, ExitCode, InvalidInputError

__all__ = ["backup", "restore"]


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option(
    "--as",
    "actor",
    metavar="USER",
    help="The user this is done for; recorded in the audit trail. Must exist and be enabled.",
)
@click.pass_context
def backup(ctx: click.Context, as_json: bool, actor: str | None) -> None:
    """Write an encrypted snapshot of the catalog to both stores; keep the newest backup.keep.

    The snapshot (SQLite backup API, or pg_dump) is encrypted like any vault object and
    written with a manifest naming its time, schema revision and audit-trail head.
    `dangan restore --from-vault` rebuilds the catalog from it.
    """
    if ctx.invoked_subcommand is not None:
        return
    st = ctx.find_object(_State)
    if st is None:  # pragma: no cover - the group always sets it
        raise InvalidInputError("no settings")
    who = _require_system(st, actor, Action.backup_run)
    report = run_backup(st.rt, actor=who)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    m = report.manifest
    click.echo(f"backup {m.snapshot_id}")
    click.echo(f"  taken at      {m.taken_at.isoformat()}")
    click.echo(f"  catalog       {m.backend} ({m.tool}), schema {m.schema_revision}")
    click.echo(f"  audit head    event {m.audit_head_id} {m.audit_head_hash}")
    click.echo(f"  records       {m.records}")
    click.echo(f"  size          {m.data.size} bytes, sha256 {m.data.plaintext_sha256}")
    click.echo(f"  stores        {', '.join(m.data.stores)}")
    for pruned in report.pruned:
        click.echo(f"pruned {pruned}")
    if report.prune_error:
        click.echo(f"older backups not pruned: {report.prune_error}", err=True)


@backup.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_state
def backup_list(st: _State, as_json: bool) -> None:
    """List the catalog backups in the stores, newest first (reads each manifest)."""
    vault = st.rt.vault
    for snapshot_id in list_backups(st.rt):
        try:
            m = read_manifest(vault, snapshot_id)
        except DanganError as exc:
            if as_json:
                click.echo(json.dumps({"snapshot_id": snapshot_id, "error": exc.message}))
            else:
                click.echo(f"{snapshot_id}  unreadable: {exc.message}")
            continue
        doc = {
            "snapshot_id": m.snapshot_id,
            "taken_at": m.taken_at.isoformat(),
            "backend": m.backend,
            "schema_revision": m.schema_revision,
            "audit_head_id": m.audit_head_id,
            "records": m.records,
            "size": m.data.size,
            "stores": m.data.stores,
        }
        if as_json:
            click.echo(json.dumps(doc, ensure_ascii=False))
        else:
            click.echo(
                f"{m.snapshot_id}  {m.taken_at.isoformat()}  {m.backend}  "
                f"{m.records} records  head {m.audit_head_id}  {m.data.size} bytes"
            )


@cli.command()
@click.option(
    "--from-vault",
    "from_vault",
    is_flag=True,
    help="Rebuild from the catalog backups and record sidecars in the two stores (required).",
)
@click.option(
    "--data-dir",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to rebuild the embedded default (overrides dangan --data-dir).",
)
@click.option("--force", is_flag=True, help="Replace a catalog that is not empty.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@pass_state
def restore(
    st: _State, from_vault: bool, data_dir: Path | None, force: bool, as_json: bool
) -> None:
    """Rebuild the catalog and the search index with nothing but the two stores and the keyring.

    Loads the newest catalog backup that opens (an older one if both copies of a newer one
    are damaged), then adds or updates every record whose sidecar was written after it, marks
    disposed of every record whose tombstone was (its code stays taken), and rebuilds the
    index from the encrypted OCR text. Audit events written after the backup
    are lost; the trail goes on from the backup's head. Refuses a catalog that is not empty
    unless --force. Exits 1 when a record's sidecar could not be read or a record of the
    backup is no longer in the stores.
    """
    if not from_vault:
        raise InvalidInputError("say where to restore from: --from-vault")
    settings = load_settings(st.config, data_dir=data_dir or st.data_dir)

    def step(name: str) -> None:
        if not as_json:
            click.echo(f"... {name}", err=True)

    report = restore_from_vault(settings, force=force, progress=step)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        m = report.snapshot
        for snapshot_id, reason in report.skipped_snapshots:
            click.echo(f"skipped backup {snapshot_id}: {reason}")
        click.echo(f"restored backup {m.snapshot_id} taken at {m.taken_at.isoformat()}")
        click.echo(f"  {m.records} records and {m.audit_events} audit events from the backup")
        click.echo(f"  {len(report.created)} records added from their sidecars")
        click.echo(f"  {len(report.updated)} records updated from their sidecars")
        for code in report.requeued:
            click.echo(f"  queued for OCR again: {code}")
        for code in report.disposed:
            click.echo(f"  disposed of after the backup (its tombstone): {code}")
        for code in report.missing:
            click.echo(f"  not in the stores (lost, or disposed of without a tombstone): {code}")
        for object_id, reason in report.sidecar_problems:
            click.echo(f"  sidecar {object_id} unreadable: {reason}")
        click.echo(f"  {report.indexed} records indexed")
        click.echo(
            f"audit events after event {m.audit_head_id} (the backup's head) up to the "
            "restore are lost; the trail goes on from there",
            err=True,
        )
    if not report.ok:
        sys.exit(int(ExitCode.check_failed))
