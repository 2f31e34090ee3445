"""Open transfer packages, the export half: records written out as a BagIt bag (docs/transfer.md).

A package is for handing records over (DA/T 70-2018: no non-public compression or encryption):
each record's original as scanned and its access PDF, unencrypted; its metadata as JSON and
XML; its OCR text a page a file; the audit events about it; manifests in SHA-256 and SM3
(:mod:`api.services.bags`). ``api.services.transfer_import`` takes one back.

The exporter needs ``export`` and, on every record, ``record.read_content`` (the policy of a
download): a record hidden from them is never selected by a filter or a query, and one named
by its code answers "no such record" exactly as the API does. Each record exported leaves one
``record.read_content`` event (``role: transfer``) before a byte of it is written, and the
export one ``transfer.export`` event (counts and the bag's digest; no codes, no words of the
query). The bag is built in a private directory beside the destination (mode 0700, removed on
any failure) and renamed into place whole: no plaintext is left anywhere else. Nothing here
logs titles, names, text or queries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from api.services.access import require_action
from api.services.bags import ALGORITHMS, make_bag
from api.services.fourprop import Selection, run_check
from api.services.fourprop_report import report_csv, report_html
from api.services.runtime import Runtime
from api.services.transfer_package import FORMAT_VERSION, PACKAGE_FORMAT
from api.services.transfer_records import export_record, iso_utc, write_file
from catalog import (
    Action,
    RecordInfo,
    RecordStatus,
    Stage,
    UserInfo,
    audit_denied,
    get_record,
    record_event,
    record_not_found,
    record_progress,
    record_target,
    records_for_export,
    require,
    visible_classes,
)
from dangan import __version__
from dangan.errors import (
    ConflictError,
    DanganError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from indexer import parse_query

__all__ = ["ExportReport", "ExportSelection", "export_bag"]

log = logging.getLogger(__name__)

_SEARCH_PAGE: Final = 100
_SEARCH_WINDOW: Final = 10_000


@dataclass(frozen=True)
class ExportSelection:
    """Which records to export: the codes named, plus those matching every filter given."""

    codes: tuple[str, ...] = ()
    query: str | None = None
    business_type: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    everything: bool = False  # every record the exporter may read

    @property
    def filtered(self) -> bool:
        return self.everything or any(
            v is not None for v in (self.query, self.business_type, self.year_from, self.year_to)
        )

    def summary(self) -> dict[str, Any]:
        """For the audit event: the shape of the selection, never the query's words."""
        return {
            "codes": len(self.codes),
            "query": self.query is not None,
            "business_type": self.business_type,
            "year_from": self.year_from,
            "year_to": self.year_to,
            "all": self.everything,
        }


@dataclass(frozen=True)
class ExportReport:
    path: Path
    export_id: str
    records: tuple[str, ...]  # archive codes, in the bag's order
    skipped: tuple[str, ...]  # matched a filter but still in intake: not exported
    pages: int
    audit_events: int
    payload_bytes: int
    payload_files: int
    tagmanifest_sha256: str
    check_outcome: str = "pass"  # the four-property check before the transfer (in the bag)


# --- selecting ------------------------------------------------------------------------------


def _named(rt: Runtime, code: str, user: UserInfo) -> RecordInfo:
    """A record named by code that ``user`` may read and that can be exported."""
    try:
        with rt.db.read() as session:
            try:
                record = get_record(session, code)
            except NotFoundError:
                raise record_not_found() from None
            require(user, Action.record_read_content, record)
            require(user, Action.record_read_history, record)
            stage = record_progress(session, record.id).stage
    except (NotFoundError, PermissionDeniedError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, Action.record_read_content, record_target(code), error=exc)
        raise
    if record.status is RecordStatus.disposed:
        raise ConflictError(f"record {code} was disposed of: its content is destroyed")
    if stage is not Stage.done:
        raise ConflictError(f"record {code} is still in intake; export it once it is processed")
    return record


def _query_ids(rt: Runtime, query: str, user: UserInfo) -> list[int]:
    parsed = parse_query(query)
    classes = frozenset(c.value for c in visible_classes(user))
    ids: list[int] = []
    page = 1
    while True:
        found = rt.index.search(
            parsed, visible_classes=classes, page=page, page_size=_SEARCH_PAGE, facets=False
        )
        if found.total > _SEARCH_WINDOW:
            raise InvalidInputError(
                f"the query matches more than {_SEARCH_WINDOW:,} records: narrow it"
            )
        ids.extend(h.record_id for h in found.hits)
        if page * _SEARCH_PAGE >= found.total:
            return ids
        page += 1


def _select(
    rt: Runtime, selection: ExportSelection, user: UserInfo
) -> tuple[list[RecordInfo], list[str]]:
    chosen: dict[str, RecordInfo] = {}
    skipped: list[str] = []
    for code in selection.codes:
        chosen[code] = _named(rt, code.strip(), user)
    if selection.filtered:
        ids = _query_ids(rt, selection.query, user) if selection.query is not None else None
        with rt.db.read() as session:
            found = records_for_export(
                session,
                user,
                business_type=selection.business_type,
                year_from=selection.year_from,
                year_to=selection.year_to,
                record_ids=ids,
            )
            for record in found:
                # The filter shows only what the user may see; reading is the policy's word.
                require(user, Action.record_read_content, record)
                if record_progress(session, record.id).stage is not Stage.done:
                    skipped.append(record.archive_code)
                    continue
                chosen.setdefault(record.archive_code, record)
    records = sorted(chosen.values(), key=lambda r: (r.year, r.business_type, r.serial))
    return records, skipped


# --- the export -----------------------------------------------------------------------------


def _check_selection(selection: ExportSelection) -> None:
    if not selection.codes and not selection.filtered:
        raise InvalidInputError("choose the records: codes, a query, a type, years, or all")
    if (
        selection.year_from is not None
        and selection.year_to is not None
        and selection.year_from > selection.year_to
    ):
        raise InvalidInputError("the first year comes after the last")


def export_bag(
    rt: Runtime,
    selection: ExportSelection,
    destination: Path,
    user: UserInfo,
    *,
    organization: str,
    now: dt.datetime | None = None,
) -> ExportReport:
    """Write the selected records as a BagIt bag at ``destination`` (a new directory).

    :param organization: the bag's ``Source-Organization``.
    :raises InvalidInputError: no selection, a bad query or years, ``destination`` exists or
        its parent does not.
    :raises PermissionDeniedError: ``user`` may not export (audited).
    :raises NotFoundError: a code names no record ``user`` may read (audited), or nothing
        matches.
    :raises ConflictError: a named record is disposed of or still in intake.
    :raises CorruptDataError: a record's content has no good copy.
    :raises DependencyMissingError: no SM3 in this Python's OpenSSL.
    """
    _check_selection(selection)
    require_action(rt, user, Action.export)
    destination = destination.absolute()
    if destination.exists():
        raise InvalidInputError(f"{destination} exists already: give a new directory")
    if not destination.parent.is_dir():
        raise InvalidInputError(f"{destination.parent} is not a directory")
    records, skipped = _select(rt, selection, user)
    if not records:
        raise NotFoundError("no record you may export matches")
    when = now or dt.datetime.now(dt.UTC)
    export_id = uuid.uuid4().hex
    # The four-property check before a transfer (DA/T 70-2018): its report travels in the bag.
    check = run_check(
        rt,
        Selection(tuple(r.archive_code for r in records)),
        user=user,
        occasion="transfer",
    )
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    pages = events = 0
    try:
        (work / "check").mkdir()
        write_file(
            work / "check" / "fourprop.json",
            [json.dumps(check.as_dict(), ensure_ascii=False, indent=1).encode()],
        )
        write_file(work / "check" / "fourprop.csv", [report_csv(check).encode("utf-8-sig")])
        write_file(work / "check" / "fourprop.html", [report_html(check).encode()])
        for record in records:
            p, e = export_record(
                rt, record, work / "records" / record.archive_code, user, export_id
            )
            pages += p
            events += e
        package = {
            "format": PACKAGE_FORMAT,
            "version": FORMAT_VERSION,
            "export_id": export_id,
            "exported_at": iso_utc(when),
            "exported_by": user.name,
            "dangan_version": __version__,
            "records": [r.archive_code for r in records],
        }
        write_file(
            work / "transfer.json",
            [(json.dumps(package, ensure_ascii=False, indent=2) + "\n").encode("utf-8")],
        )
        facts = make_bag(
            work,
            {
                "Source-Organization": organization,
                "Bagging-Date": when.date().isoformat(),
                "Bag-Software-Agent": f"dangan {__version__}",
                "External-Identifier": export_id,
                "External-Description": f"档案移交包: {len(records)} records",
                "Contact-Name": user.name,
                "Bag-Size": f"{len(records)} records",
                "Dangan-Records": str(len(records)),
                "Dangan-Pages": str(pages),
                "Dangan-Audit-Events": str(events),
                "Dangan-Manifest-Algorithms": ", ".join(ALGORITHMS),
                "Dangan-Check-Outcome": check.outcome.value,
            },
        )
        work.rename(destination)  # mode 0700, as mkdtemp made it: it holds students' records
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, DanganError):
            with rt.db.write() as session:
                record_event(
                    session,
                    actor=user.name,
                    action="transfer.export",
                    target=f"export:{export_id}",
                    outcome="error",
                    detail={"selection": selection.summary(), "error": exc.code},
                )
        raise
    with rt.db.write() as session:
        record_event(
            session,
            actor=user.name,
            action="transfer.export",
            target=f"export:{export_id}",
            detail={
                "selection": selection.summary(),
                "records": len(records),
                "skipped": len(skipped),
                "pages": pages,
                "audit_events": events,
                "payload_oxum": f"{facts.payload_bytes}.{facts.payload_files}",
                "tagmanifest_sha256": facts.tagmanifest_sha256,
            },
        )
    log.info(
        "records exported",
        extra={"event": "transfer.export", "records": len(records), "export_id": export_id},
    )
    return ExportReport(
        path=destination,
        export_id=export_id,
        records=tuple(r.archive_code for r in records),
        skipped=tuple(skipped),
        pages=pages,
        audit_events=events,
        payload_bytes=facts.payload_bytes,
        payload_files=facts.payload_files,
        tagmanifest_sha256=facts.tagmanifest_sha256,
        check_outcome=check.outcome.value,
    )
