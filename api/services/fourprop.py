"""The four-property check (四性检测, DA/T 70-2018): authenticity, integrity, usability and
security of each record and of the archive that holds it.

``dangan check``, ``POST /api/v1/checks``, the ``/checks`` page, the ``check.record`` job that
intake queues for every record it archives, and the scheduled ``check.archive`` run all call
:func:`run_check`. Each item of a report is one rule with a result and a short reason that
names codes, object ids, counts and figures only: never record text, a title, a student's
name or a key. What each rule proves, and which clause it answers, is ``docs/standards.md``.

The check reads (every copy, decrypted when ``deep``), and writes only what any reader
writes: a copy found bad is marked and its repair queued, and the run is audited
(``check.run``, plus one ``check.record`` per record checked).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.services.access import require_action
from api.services.fixity import verify_catalog_copy
from api.services.reading import mark_bad_copy
from api.services.runtime import Runtime, job_runtime, worker_actor
from catalog import (
    Action,
    AuditEventInfo,
    JobContext,
    ObjectInfo,
    ObjectRole,
    PageInfo,
    PageState,
    RecordInfo,
    RecordStatus,
    Role,
    SecurityClass,
    UserInfo,
    Verdict,
    former_codes,
    get_decision,
    history_targets,
    is_allowed,
    list_business_types,
    list_events,
    list_pages,
    objects_of_record,
    record_event,
    record_target,
    register,
    report_schedule_run,
    verify_chain,
    visible_classes,
)
from catalog.checks import (
    explain_gap,
    explained_codes,
    legacy_series_tops,
    records_to_check,
    serial_runs,
)
from dangan.errors import DanganError, InvalidInputError
from ocr.inspect import limit_pillow_pixels, sniff_media_type
from ocr.rasterize import load_page, page_count
from vault import WrappedKey

__all__ = [
    "MAX_RECORDS_PER_REQUEST",
    "OPEN_FORMATS",
    "CheckItem",
    "CheckReport",
    "Outcome",
    "Property",
    "RecordCheck",
    "Selection",
    "check_archive_items",
    "check_record",
    "explain_code_gap",
    "run_check",
]

MAX_RECORDS_PER_REQUEST = 500
"""The most records one check over HTTP takes; larger runs are ``dangan check --batch``."""

# DA/T 70-2018 asks for open formats (GB/T 18894-2016 names them): what intake accepts is all
# open; a record holding anything else fails usability.
OPEN_FORMATS = frozenset({"application/pdf", "image/tiff", "image/jpeg", "image/png"})

_INTAKE_TEMP_PREFIX = "dangan-intake-"  # api.services.intake.private_directory
_LIVE_ROLES = (ObjectRole.original, ObjectRole.access_copy, ObjectRole.ocr_text, ObjectRole.sidecar)
# The sidecar's fields compared with the catalog's (api.services.sidecars.sidecar_document).
_SIDECAR_FIELDS = (
    "archive_code",
    "year",
    "business_type",
    "serial",
    "title",
    "student_no",
    "student_name",
    "student_class",
    "security_class",
    "paper_location",
    "tags",
    "notes",
    "former_codes",
    "decision",
)
_STUDENT_FIELDS = ("student_no", "student_name")


class Property(StrEnum):
    authenticity = "authenticity"  # 真实性
    integrity = "integrity"  # 完整性
    usability = "usability"  # 可用性
    security = "security"  # 安全性


class Outcome(StrEnum):
    passed = "pass"
    warn = "warn"
    fail = "fail"
    skipped = "skip"  # not run: a quick check, or nothing to check


_WORST = {Outcome.fail: 3, Outcome.warn: 2, Outcome.passed: 1, Outcome.skipped: 0}


@dataclass(frozen=True)
class CheckItem:
    """One rule checked: ``rule`` is stable (``A1``…``S5``, docs/standards.md)."""

    property: Property
    rule: str
    name: str
    outcome: Outcome
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "property": self.property.value,
            "rule": self.rule,
            "name": self.name,
            "outcome": self.outcome.value,
            "detail": self.detail,
        }


def _worst(items: Iterable[CheckItem]) -> Outcome:
    return max((i.outcome for i in items), key=_WORST.__getitem__, default=Outcome.skipped)


@dataclass(frozen=True)
class RecordCheck:
    archive_code: str
    business_type: str
    year: int
    items: tuple[CheckItem, ...]

    @property
    def outcome(self) -> Outcome:
        return _worst(self.items)

    def by_property(self) -> dict[Property, Outcome]:
        return {p: _worst(i for i in self.items if i.property is p) for p in Property}

    def as_dict(self) -> dict[str, Any]:
        return {
            "archive_code": self.archive_code,
            "business_type": self.business_type,
            "year": self.year,
            "outcome": self.outcome.value,
            "properties": {p.value: o.value for p, o in self.by_property().items()},
            "items": [i.as_dict() for i in self.items],
        }


@dataclass(frozen=True)
class Selection:
    """Which records a check covers: codes, or a type and year range (all: nothing given)."""

    codes: tuple[str, ...] = ()
    business_type: str | None = None
    year_from: int | None = None
    year_to: int | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.codes:
            out["codes"] = len(self.codes)
        if self.business_type:
            out["business_type"] = self.business_type
        if self.year_from is not None:
            out["year_from"] = self.year_from
        if self.year_to is not None:
            out["year_to"] = self.year_to
        return out


@dataclass
class CheckReport:
    """A run's report: the archive-wide items and one :class:`RecordCheck` per record."""

    started_at: dt.datetime
    actor: str
    occasion: str  # "manual", "intake", "transfer", "schedule"
    deep: bool
    selection: Selection
    archive: list[CheckItem] = field(default_factory=list)
    records: list[RecordCheck] = field(default_factory=list)
    finished_at: dt.datetime | None = None
    not_found: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        return _worst([*self.archive, *(i for r in self.records for i in r.items)])

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for r in self.records:
            out[r.outcome.value] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "actor": self.actor,
            "occasion": self.occasion,
            "deep": self.deep,
            "selection": self.selection.describe(),
            "outcome": self.outcome.value,
            "records_checked": len(self.records),
            "record_outcomes": self.counts(),
            "not_found": list(self.not_found),
            "archive": [i.as_dict() for i in self.archive],
            "records": [r.as_dict() for r in self.records],
        }


# --- one record ---------------------------------------------------------------------------


class _Items:
    def __init__(self) -> None:
        self.items: list[CheckItem] = []

    def add(
        self,
        prop: Property,
        rule: str,
        name: str,
        problems: Sequence[str],
        *,
        warn: Sequence[str] = (),
        skipped: str | None = None,
        ok: str = "",
    ) -> None:
        if skipped is not None:
            self.items.append(CheckItem(prop, rule, name, Outcome.skipped, skipped))
        elif problems:
            self.items.append(CheckItem(prop, rule, name, Outcome.fail, "; ".join(problems)))
        elif warn:
            self.items.append(CheckItem(prop, rule, name, Outcome.warn, "; ".join(warn)))
        else:
            self.items.append(CheckItem(prop, rule, name, Outcome.passed, ok))


def _live(objects: Sequence[ObjectInfo], role: ObjectRole) -> list[ObjectInfo]:
    return [o for o in objects if o.role is role and not o.is_shredded]


def _read_whole(rt: Runtime, obj: ObjectInfo, *, actor: str) -> bytes:
    """One object's plaintext from whichever copy holds up, checked against its hash; a bad
    copy on the way is marked and its repair queued."""
    assert obj.wrapped_key is not None  # noqa: S101 - only live objects come here
    reader = rt.vault.read(
        obj.id,
        WrappedKey.from_bytes(obj.wrapped_key),
        plaintext_sha256=obj.plaintext_sha256,
        algorithm=obj.digest_algorithm,
        on_bad_copy=lambda status: mark_bad_copy(rt, obj, status, actor=actor),
    )
    with reader:
        return b"".join(reader)


def _copies_items(
    rt: Runtime,
    record: RecordInfo,
    objects: Sequence[ObjectInfo],
    out: _Items,
    *,
    deep: bool,
    actor: str,
) -> None:
    """A1: both copies of every live object hold (size and ciphertext hash; decrypted too
    when ``deep``). S1: every live object is encrypted under a key in the keyring."""
    problems: list[str] = []
    checked = 0
    keyring = rt.vault.keyring
    known = frozenset(keyring.key_ids) if keyring is not None else frozenset()
    unkeyed: list[str] = []
    for obj in objects:
        if obj.is_shredded:
            continue
        if obj.key_id is not None and obj.key_id not in known:
            unkeyed.append(f"{obj.role.value} {obj.id[:12]} is wrapped by a key not in the keyring")
        if obj.is_damaged:
            problems.append(f"{obj.role.value} {obj.id[:12]}: no good copy")
            continue
        stores = {c.store for c in obj.copies}
        for missing in sorted({"primary", "replica"} - stores):
            problems.append(f"{obj.role.value} {obj.id[:12]}: no {missing} copy")
        for copy in obj.copies:
            try:
                status = verify_catalog_copy(rt.vault, copy, obj, deep=deep)
            except DanganError as exc:
                problems.append(f"{obj.role.value} {obj.id[:12]} in {copy.store}: {exc.code}")
                continue
            checked += 1
            if not status.ok:
                problems.append(f"{obj.role.value} {obj.id[:12]} in {copy.store}: {status.reason}")
                mark_bad_copy(rt, obj, status, actor=actor)
    how = "decrypted and hashed" if deep else "size and ciphertext hash"
    out.add(
        Property.authenticity, "A1", "both copies intact", problems, ok=f"{checked} copies ({how})"
    )
    out.add(
        Property.security,
        "S1",
        "encrypted under the keyring",
        unkeyed,
        ok=f"{sum(1 for o in objects if not o.is_shredded)} objects",
    )


def _sidecar_items(
    rt: Runtime, record: RecordInfo, objects: Sequence[ObjectInfo], out: _Items, *, actor: str
) -> None:
    """A2: the original's hash is the record's; A3: the vault's own account of the record
    (its sidecar) says what the catalog says."""
    problems: list[str] = []
    originals = _live(objects, ObjectRole.original)
    if not originals:
        problems.append("no original")
    elif record.plaintext_sha256 is not None and not hmac.compare_digest(
        originals[0].plaintext_sha256, record.plaintext_sha256
    ):
        problems.append("the original's hash is not the one recorded at intake")
    elif record.size is not None and originals[0].size != record.size:
        problems.append("the original's size is not the one recorded at intake")
    out.add(
        Property.authenticity,
        "A2",
        "original as received",
        problems,
        ok="hash and size as at intake",
    )
    sidecars = _live(objects, ObjectRole.sidecar)
    if not sidecars:
        out.add(
            Property.authenticity,
            "A3",
            "catalog matches the vault's sidecar",
            ["the record has no sidecar in the vault"],
        )
        return
    sidecar = sidecars[0]
    try:
        doc = json.loads(_read_whole(rt, sidecar, actor=actor))
    except (DanganError, ValueError) as exc:
        code = exc.code if isinstance(exc, DanganError) else "malformed"
        out.add(
            Property.authenticity,
            "A3",
            "catalog matches the vault's sidecar",
            [f"the sidecar cannot be read ({code})"],
        )
        return
    with rt.db.read() as session:
        former = list(former_codes(session, record.id))
        decision = get_decision(session, record.id)
    mine = {
        "archive_code": record.archive_code,
        "year": record.year,
        "business_type": record.business_type,
        "serial": record.serial,
        "title": record.title,
        "student_no": record.student_no,
        "student_name": record.student_name,
        "student_class": record.student_class,
        "security_class": record.security_class.value,
        "paper_location": record.paper_location,
        "tags": list(record.tags),
        "notes": record.notes,
        "former_codes": former,
        "decision": decision.as_detail() if decision is not None else None,
    }
    # Fields a sidecar carries only when the record has them (api.services.sidecars).
    theirs = {**doc, "tags": doc.get("tags") or [], "former_codes": doc.get("former_codes") or []}
    differ = [name for name in _SIDECAR_FIELDS if theirs.get(name) != mine[name]]
    listed = {o.get("object_id"): o.get("plaintext_sha256") for o in doc.get("objects", [])}
    for obj in objects:
        if obj.role in (ObjectRole.original, ObjectRole.access_copy, ObjectRole.ocr_text) and (
            not obj.is_shredded and listed.get(obj.id) != obj.plaintext_sha256
        ):
            differ.append(f"{obj.role.value} object")
    out.add(
        Property.authenticity,
        "A3",
        "catalog matches the vault's sidecar",
        [f"differs from the sidecar: {', '.join(differ)}"] if differ else [],
        ok=f"{len(_SIDECAR_FIELDS)} fields and {len(listed)} objects",
    )


_CREATION_ACTIONS = ("record.create", "record.import")


def _trail_items(record: RecordInfo, events: Sequence[AuditEventInfo], out: _Items) -> None:
    """A4: the record's own history explains what it is now: it was created (audited), and
    every audited change starts where the one before it left off and ends at today's value."""
    problems: list[str] = []
    # An imported record was created here by its import; its history before that travels in
    # the transfer bag, not in this archive's trail (docs/transfer.md).
    created = [e for e in events if e.action in _CREATION_ACTIONS and e.outcome == "ok"]
    if not created:
        problems.append("no audited creation")
    elif created[0].detail.get("record_id") not in (None, record.id):
        problems.append("the creation event names another record")
    current = {
        "title": record.title,
        "student_no": record.student_no,
        "student_name": record.student_name,
        "student_class": record.student_class,
        "paper_location": record.paper_location,
        "security_class": record.security_class.value,
        "archive_code": record.archive_code,
        "business_type": record.business_type,
        "year": record.year,
        "tags": list(record.tags),
        "notes": record.notes,
    }
    last_after: dict[str, Any] = {}
    changes = 0
    for event in events:
        if event.outcome != "ok" or "after" not in event.detail:
            continue
        before, after = event.detail.get("before", {}), event.detail.get("after", {})
        changes += 1
        for name, value in before.items():
            if name in last_after and last_after[name] != value:
                problems.append(f"event {event.id} changes {name} from a value it did not have")
        last_after.update(after)
    for name, value in last_after.items():
        if name in current and current[name] != value:
            problems.append(f"{name} changed since its last audited change")
    out.add(
        Property.authenticity,
        "A4",
        "history explains the record",
        problems,
        ok=f"created and {changes} audited changes",
    )


def _integrity_items(
    rt: Runtime,
    record: RecordInfo,
    objects: Sequence[ObjectInfo],
    pages: Sequence[PageInfo],
    out: _Items,
) -> None:
    """I1: every declared page is there and was read; I2: the required metadata is filled in;
    I3: the record holds each object an archived record has."""
    problems: list[str] = []
    if record.page_count < 1:
        problems.append("no pages declared")
    numbers = [p.number for p in pages]
    if numbers != list(range(1, record.page_count + 1)):
        problems.append(f"{len(numbers)} of {record.page_count} declared pages in the catalog")
    unread = [p.number for p in pages if p.state is not PageState.done]
    if unread:
        problems.append(f"pages not read: {', '.join(map(str, unread[:10]))}")
    out.add(
        Property.integrity,
        "I1",
        "declared pages present",
        problems,
        ok=f"{record.page_count} pages",
    )

    settings = rt.settings.check
    wanted = list(settings.required_fields)
    if record.business_type not in settings.no_student_types:
        wanted += [f for f in _STUDENT_FIELDS if f not in wanted]
    empty = [f for f in wanted if not (getattr(record, f, None) or "").strip()]
    out.add(
        Property.integrity,
        "I2",
        "required metadata complete",
        [f"empty: {', '.join(empty)}"] if empty else [],
        ok=f"{len(wanted)} fields",
    )

    missing = [r.value for r in _LIVE_ROLES if not _live(objects, r)]
    out.add(
        Property.integrity,
        "I3",
        "original, access copy, OCR text and sidecar held",
        [f"missing: {', '.join(missing)}"] if missing else [],
        ok=f"{len(_LIVE_ROLES)} objects",
    )


def _usability_items(
    rt: Runtime,
    record: RecordInfo,
    objects: Sequence[ObjectInfo],
    pages: Sequence[PageInfo],
    out: _Items,
    *,
    deep: bool,
    actor: str,
) -> None:
    """U1: open formats; U2: the original opens and every page renders; U3: the access copy
    opens with every page; U4: the record is found in the index; U5: digitization quality."""
    fmt = record.content_type or "unknown"
    out.add(
        Property.usability,
        "U1",
        "open format",
        [] if fmt in OPEN_FORMATS else [f"{fmt} is not an open format"],
        ok=fmt,
    )

    originals = _live(objects, ObjectRole.original)
    access = _live(objects, ObjectRole.access_copy)
    if not deep:
        out.add(Property.usability, "U2", "every page renders", [], skipped="quick check")
        out.add(Property.usability, "U3", "access copy opens", [], skipped="quick check")
    else:
        problems: list[str] = []
        rendered = 0
        if not originals:
            problems.append("no original")
        else:
            try:
                data = _read_whole(rt, originals[0], actor=actor)
                media = sniff_media_type(data[:16])
                limit_pillow_pixels(rt.settings.ocr.max_image_pixels)
                count = page_count(data, media)
                if count != record.page_count:
                    problems.append(f"the file has {count} pages, {record.page_count} declared")
                for index in range(count):
                    load_page(data, media, index, max_pixels=rt.settings.ocr.max_image_pixels)
                    rendered += 1
                del data
            except DanganError as exc:
                problems.append(f"page {rendered + 1}: {exc.code}")
        out.add(
            Property.usability,
            "U2",
            "every page renders",
            problems,
            ok=f"{rendered} pages rendered",
        )
        problems = []
        if not access:
            problems.append("no access copy")
        else:
            try:
                pdf = _read_whole(rt, access[0], actor=actor)
                count = page_count(pdf, "application/pdf")
                if count != record.page_count:
                    problems.append(f"{count} pages, {record.page_count} declared")
            except DanganError as exc:
                problems.append(exc.code)
        out.add(Property.usability, "U3", "access copy opens", problems, ok="PDF")

    try:
        hits = rt.index.search(
            f"code:{record.archive_code}",
            visible_classes=frozenset({record.security_class.value}),
            page_size=50,
            facets=False,
        )
        found = any(h.record_id == record.id for h in hits.hits)
        out.add(
            Property.usability,
            "U4",
            "found by search",
            [] if found else ["not in the search index"],
            ok="indexed",
        )
    except DanganError as exc:
        out.add(Property.usability, "U4", "found by search", [f"index: {exc.code}"])

    fails: list[str] = []
    warns: list[str] = []
    for page in pages:
        for c in page.checks:
            figure = c.reading or (f"{c.value:g}" if c.value is not None else "")
            text = f"page {page.number} {c.name} {figure} (needs {c.threshold})"
            if c.verdict is Verdict.fail:
                fails.append(text)
            elif c.verdict is Verdict.warn:
                warns.append(text)
    measured = sum(len(p.checks) for p in pages)
    out.add(
        Property.usability,
        "U5",
        "digitization quality (DA/T 31)",
        fails[:10],
        warn=warns[:10],
        ok=f"{measured} page checks",
        # Read before the quality gate existed, or imported: `dangan quality backfill`.
        skipped=None if measured or not pages else "pages not measured",
    )


def _security_items(record: RecordInfo, out: _Items, rt: Runtime) -> None:
    """S2: the record's security class is the one its type demands, and only the roles the
    policy names can see a contract-class record, in the catalog and in the index."""
    problems: list[str] = []
    contract = SecurityClass.contract
    if record.business_type in _contract_types(rt) and record.security_class is not contract:
        problems.append(f"a {record.business_type} record filed as {record.security_class}")
    if record.security_class is contract:
        readers = [r.value for r in Role if is_allowed(r, Action.record_read_metadata, contract)]
        if readers != [Role.director.value]:
            problems.append(f"contract-class records readable by {', '.join(readers)}")
        try:
            others = frozenset(c.value for c in SecurityClass if c is not contract)
            leaked = rt.index.search(
                f"code:{record.archive_code}", visible_classes=others, page_size=50, facets=False
            )
            if any(h.record_id == record.id for h in leaked.hits):
                problems.append("the index shows it to non-contract readers")
        except DanganError as exc:
            problems.append(f"index: {exc.code}")
    out.add(
        Property.security,
        "S2",
        "security class and isolation",
        problems,
        ok=record.security_class.value,
    )


def _contract_types(rt: Runtime) -> frozenset[str]:
    with rt.db.read() as session:
        return frozenset(
            t.name
            for t in list_business_types(session)
            if t.default_security_class is SecurityClass.contract
        )


def check_record(rt: Runtime, record: RecordInfo, *, deep: bool, actor: str) -> RecordCheck:
    """Check one record (the caller has already decided the actor may see it)."""
    with rt.db.read() as session:
        objects = objects_of_record(session, record.id)
        pages = list_pages(session, record.id)
        events = list_events(session, targets=history_targets(session, record), limit=10_000)
    out = _Items()
    if record.status is RecordStatus.disposed:
        out.add(Property.integrity, "I0", "record kept", [], skipped="disposed: a tombstone")
        return RecordCheck(record.archive_code, record.business_type, record.year, tuple(out.items))
    _copies_items(rt, record, objects, out, deep=deep, actor=actor)
    _sidecar_items(rt, record, objects, out, actor=actor)
    _trail_items(record, events, out)
    _integrity_items(rt, record, objects, pages, out)
    _usability_items(rt, record, objects, pages, out, deep=deep, actor=actor)
    _security_items(record, out, rt)
    return RecordCheck(record.archive_code, record.business_type, record.year, tuple(out.items))


# --- the archive ---------------------------------------------------------------------------


def _keyring_problems(rt: Runtime) -> tuple[list[str], str]:
    if rt.settings.keyring is not None:
        return [], "the keyring comes from DANGAN_KEYRING (never on disk)"
    path = rt.settings.vault.keyring_path
    assert path is not None  # noqa: S101 - filled in by the settings
    try:
        st = os.lstat(path)
    except OSError as exc:
        return [f"the keyring file cannot be read: {exc.strerror}"], ""
    problems = []
    if not stat.S_ISREG(st.st_mode):
        problems.append("the keyring is not a regular file")
    if st.st_mode & 0o077:
        problems.append(f"the keyring file has mode {stat.S_IMODE(st.st_mode):04o}, not 0600")
    if st.st_uid != os.geteuid():
        problems.append("the keyring file belongs to another user")
    for name, store in (
        ("primary", rt.settings.vault.primary),
        ("replica", rt.settings.vault.replica),
    ):
        if store.path is not None and path.resolve().is_relative_to(store.path.resolve()):
            problems.append(f"the keyring lies inside the {name} store")
    return problems, f"mode {stat.S_IMODE(st.st_mode):04o}"


def _temp_leftovers(rt: Runtime, now: float) -> list[str]:
    """Intake temp directories (decrypted or received plaintext) older than the limit: what a
    crashed upload would leave."""
    limit = rt.settings.check.stale_temp_minutes * 60
    found = []
    root = Path(tempfile.gettempdir())
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(_INTAKE_TEMP_PREFIX):
            continue
        try:
            age = now - entry.lstat().st_mtime
        except OSError:
            continue
        if age > limit:
            found.append(f"{entry.name} ({int(age // 60)} min old)")
    return found


def _store_problems(rt: Runtime) -> list[str]:
    problems = []
    for name, store in (
        ("primary", rt.settings.vault.primary),
        ("replica", rt.settings.vault.replica),
    ):
        if store.kind != "fs" or store.path is None or not store.path.exists():
            continue
        mode = stat.S_IMODE(store.path.stat().st_mode)
        if mode & 0o007:
            problems.append(f"the {name} store directory is open to others ({mode:04o})")
    return problems


def check_archive_items(
    rt: Runtime, selection: Selection, *, who: UserInfo | None = None, now: float | None = None
) -> list[CheckItem]:
    """The checks of the archive as a whole: the audit chain (A0), archive-code serials
    without gaps (I4), the keyring (S3), temp areas (S4) and the stores (S5).

    :param who: the reader; the code series of types whose records they may not see (合同
        for all but directors) are left out of I4, so its figures tell nothing of them.
    """
    out = _Items()
    hidden: frozenset[str] = frozenset()
    if who is not None:
        seen = visible_classes(who)
        with rt.db.read() as session:
            hidden = frozenset(
                t.name for t in list_business_types(session) if t.default_security_class not in seen
            )
    with rt.db.read() as session:
        chain = verify_chain(session)
        runs = serial_runs(
            session,
            business_type=selection.business_type,
            year_from=selection.year_from,
            year_to=selection.year_to,
        )
        explained = explained_codes(session)
        legacy = legacy_series_tops(session)
    runs = [r for r in runs if r.business_type not in hidden]
    out.add(
        Property.authenticity,
        "A0",
        "audit trail unbroken",
        [str(p) for p in chain.problems[:5]],
        ok=f"{chain.events} events chained",
    )
    gaps: list[str] = []
    old_numbering: list[str] = []
    for r in runs:
        # A director's explanation closes a gap; below a kept legacy code the numbers were
        # an earlier register's, so a gap there is a warning, not a failure.
        unexplained = [
            n for n in r.missing if f"{r.year}-{r.business_type}-{n:03d}" not in explained
        ]
        top = legacy.get((r.year, r.business_type), 0)
        for name, serials in (
            (gaps, [n for n in unexplained if n > top]),
            (old_numbering, [n for n in unexplained if n <= top]),
        ):
            if serials:
                name.append(
                    f"{r.year}-{r.business_type}: {', '.join(f'{n:03d}' for n in serials[:10])}"
                )
    out.add(
        Property.integrity,
        "I4",
        "archive codes without gaps",
        gaps,
        warn=[f"legacy numbering: {g}" for g in old_numbering],
        ok=f"{sum(len(r.held) for r in runs)} codes in {len(runs)} series",
    )
    problems, ok = _keyring_problems(rt)
    out.add(Property.security, "S3", "keyring protected", problems, ok=ok)
    out.add(
        Property.security,
        "S4",
        "no plaintext left in temp areas",
        _temp_leftovers(rt, time.time() if now is None else now),
        ok="none left",
    )
    out.add(Property.security, "S5", "stores closed to others", _store_problems(rt), ok="checked")
    return out.items


# --- a run ---------------------------------------------------------------------------------


def run_check(
    rt: Runtime,
    selection: Selection,
    *,
    user: UserInfo | None,
    actor: str | None = None,
    deep: bool = True,
    occasion: str = "manual",
    limit: int | None = None,
    archive: bool = True,
    progress: Callable[[RecordCheck], None] | None = None,
) -> CheckReport:
    """Check the selected records and the archive, audit the run, and return the report.

    :param user: the person asking (checked by the policy, and only their visible records
        are checked); ``None`` for the system (scheduled runs, intake).
    :param limit: the most records one run takes; more selected is an error.
    :param archive: also check the archive as a whole (the trail, serials, keyring, temp
        areas, stores); intake's check of one record leaves that to the scheduled run.
    :raises PermissionDeniedError: the user may not run checks.
    :raises InvalidInputError: more records selected than ``limit``.
    """
    if user is not None:
        require_action(rt, user, Action.check_run)
    who = actor or (user.name if user is not None else "system")
    report = CheckReport(dt.datetime.now(dt.UTC), who, occasion, deep, selection)
    with rt.db.read() as session:
        records = records_to_check(
            session,
            who=user,
            codes=selection.codes,
            business_type=selection.business_type,
            year_from=selection.year_from,
            year_to=selection.year_to,
            limit=None if limit is None else limit + 1,
        )
    if limit is not None and len(records) > limit:
        raise InvalidInputError(
            f"more than {limit} records selected; narrow the selection or use `dangan check`"
        )
    found = {r.archive_code for r in records}
    report.not_found = [c for c in selection.codes if c not in found]
    if archive:
        report.archive = check_archive_items(rt, selection, who=user)
    for record in records:
        result = check_record(rt, record, deep=deep, actor=who)
        report.records.append(result)
        if progress is not None:
            progress(result)
    report.finished_at = dt.datetime.now(dt.UTC)
    _audit(rt, report)
    return report


def _audit(rt: Runtime, report: CheckReport) -> None:
    with rt.db.write() as session:
        for r in report.records:
            failed = sorted({i.rule for i in r.items if i.outcome is Outcome.fail})
            record_event(
                session,
                actor=report.actor,
                action="check.record",
                target=record_target(r.archive_code),
                outcome="ok" if not failed else "error",
                detail={
                    "occasion": report.occasion,
                    "outcome": r.outcome.value,
                    "failed": failed,
                    "deep": report.deep,
                },
            )
        record_event(
            session,
            actor=report.actor,
            action="check.run",
            target=None,
            outcome="ok" if report.outcome is not Outcome.fail else "error",
            detail={
                "occasion": report.occasion,
                "deep": report.deep,
                "selection": report.selection.describe(),
                "records": len(report.records),
                "outcomes": report.counts(),
                "archive_failed": sorted(
                    i.rule for i in report.archive if i.outcome is Outcome.fail
                ),
            },
        )


# --- jobs: at intake and on a schedule -----------------------------------------------------

CHECK_RECORD = "check.record"
"""Queued by intake once a record is archived: that record's deep check."""
CHECK_ARCHIVE = "check.archive"
"""Queued by the scheduler every ``check.interval_days``: every record (quick) and the archive."""
CHECK_PRIORITY = 400  # after intake (100), before the fixity cycle (500)


class CheckRecordPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    archive_code: str = Field(min_length=1, max_length=64)


class CheckArchivePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register(CHECK_RECORD, CheckRecordPayload)
def check_record_job(ctx: JobContext[Any], payload: CheckRecordPayload) -> None:
    """Intake's check of one archived record; its outcome is in the record's history."""
    rt = job_runtime(ctx, "check")
    run_check(
        rt,
        Selection((payload.archive_code,)),
        user=None,
        actor=worker_actor(ctx),
        occasion="intake",
        archive=False,
    )


@register(CHECK_ARCHIVE, CheckArchivePayload)
def check_archive_job(ctx: JobContext[Any], payload: CheckArchivePayload) -> None:
    """The scheduled check: every record by its copies' hashes (the fixity cycle decrypts a
    share of them each run) and the archive; the report is kept under ``reports/checks``."""
    rt = job_runtime(ctx, "check")
    report = run_check(
        rt, Selection(), user=None, actor=worker_actor(ctx), occasion="schedule", deep=False
    )
    save_report(rt, report)
    failed = sum(1 for i in report.archive if i.outcome is Outcome.fail)
    with rt.db.write() as session:
        report_schedule_run(session, CHECK_ARCHIVE, {**report.counts(), "archive_fail": failed})


def reports_dir(rt: Runtime) -> Path:
    return rt.settings.data_dir / "reports" / "checks"


def save_report(rt: Runtime, report: CheckReport) -> Path:
    """Keep a report as JSON, CSV and HTML (mode 0600, in a 0700 directory), and only the
    newest ``check.keep_reports`` of them."""
    from api.services.fourprop_report import report_csv, report_html

    directory = reports_dir(rt)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stem = report.started_at.strftime("%Y%m%dT%H%M%S%fZ")
    bodies = {
        "json": json.dumps(report.as_dict(), ensure_ascii=False, indent=1).encode(),
        "csv": report_csv(report).encode("utf-8-sig"),
        "html": report_html(report).encode(),
    }
    for ext, body in bodies.items():
        path = directory / f"check-{stem}.{ext}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
    stems = sorted({p.name.split(".")[0] for p in directory.glob("check-*.json")})
    for old in stems[: -rt.settings.check.keep_reports]:
        for path in directory.glob(f"{old}.*"):
            path.unlink(missing_ok=True)
    return directory / f"check-{stem}.json"


def sees_every_class(user: UserInfo) -> bool:
    """Whether ``user`` may see records of every security class: only they may read the
    scheduled runs' reports, which cover every record."""
    return visible_classes(user) == frozenset(SecurityClass)


def explain_code_gap(rt: Runtime, archive_code: str, reason: str, user: UserInfo) -> None:
    """A director explains why no record holds ``archive_code`` (a lost paper, a number the
    old register skipped): the four-property check's I4 then no longer counts it.

    Who may: ``business_type.manage`` (the director, who keeps the types and their series).

    :raises PermissionDeniedError: ``user`` may not.
    :raises InvalidInputError: a malformed code or reason.
    :raises ConflictError: a record holds the code.
    """
    require_action(rt, user, Action.business_type_manage)
    with rt.db.write() as session:
        explain_gap(session, archive_code, reason=reason, actor=user.name)
