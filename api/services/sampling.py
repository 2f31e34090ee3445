"""The quarterly sampling audit (抽查): draw a reproducible, statistically sized sample of a
quarter's records, check each item automatically and by hand, file findings with a 7-day
deadline, and track them to closure with evidence (``docs/sampling.md``).

``dangan audit sample``, ``/api/v1/sampling/...`` and the ``/sampling`` pages all call this
module. The draw covers every record of the quarter, contracts included, and is the same
whoever draws it; what a person *gets back* is the part they may see: a contract item's code,
results and findings exist for directors alone, and everyone else's figures (sample, defects,
error rate) are taken over the items they see. Only a director fills in a contract item's
checklist (the policy's ``sampling.check``); its automatic checks run for every draw.

What this module must never do: let anyone choose the sample (the seed is the quarter and
the audit trail's head), or let a preview, a report or a finding move the seed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from api.services.access import require_action
from api.services.fourprop import CheckItem, Outcome, Property, check_record
from api.services.intake import RefusedUpload, Upload
from api.services.jobs import discard_on_error, queue_replication, written
from api.services.names import sanitize_upload_name
from api.services.runtime import Runtime, job_runtime, worker_actor
from api.services.sampling_plan import (
    CONFIDENCE,
    DEFECT_RATE,
    Estimate,
    Quarter,
    Stratum,
    choose,
    derive_seed,
    estimate,
    parse_quarter,
    sample_size,
)
from api.services.upload_form import ReceivedForm
from catalog import (
    PAPERWORK_DAYS,
    Action,
    AuditInfo,
    ChainHead,
    DrawnItem,
    EvidenceFile,
    FindingInfo,
    FindingSeverity,
    ItemInfo,
    JobContext,
    ObjectRole,
    PageState,
    RecordInfo,
    RetentionTrigger,
    SecurityClass,
    UserInfo,
    add_object,
    answer_finding,
    audit_denied,
    close_finding,
    count_overdue_findings,
    due_year,
    file_finding,
    findings_to_remind,
    get_audit,
    get_finding,
    get_graduation_year,
    get_item,
    get_record_by_id,
    get_user,
    is_allowed,
    list_audits,
    list_findings,
    list_items,
    list_pages,
    list_schedules,
    list_users,
    mark_reminded,
    parse_code,
    record_checklist,
    record_event,
    register,
    report_schedule_run,
    require,
    sampling_head,
    sampling_population,
    store_draw,
    visible_classes,
)
from catalog import overdue_grants as catalog_overdue_grants
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from vault import CHUNK, new_object_id

__all__ = [
    "CHECKLIST",
    "DEADLINE",
    "REMIND_WITHIN",
    "SAMPLING_REMIND",
    "AuditView",
    "Draw",
    "EvidenceUpload",
    "answer",
    "audit_view",
    "audits_for",
    "automatic_checks",
    "close",
    "draw",
    "evidence_of",
    "file",
    "findings_for",
    "manual_check",
    "note_report",
    "overdue_findings",
    "plan",
    "preview",
    "remind",
    "sees_every_class",
]

log = logging.getLogger(__name__)

DEADLINE: Final = dt.timedelta(days=7)
"""A finding's deadline after it is filed (the office's rule: problems fixed within 7 days)."""
REMIND_WITHIN: Final = dt.timedelta(days=2)
"""Findings due within this (or overdue) get a reminder, at most one a day each."""

#: The manual checklist: question → the English label the pages translate.
CHECKLIST: Final = {
    "legible": "The scan is legible",
    "matches_paper": "The scan matches the paper original",
    "location_right": "The paper is where the record says",
}


# --- the draw ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Draw:
    """What a quarter's draw is (or would be) before anything is kept."""

    quarter: Quarter
    seed: str
    head_id: int
    head_hash: str
    population: int
    size: int
    strata: tuple[Stratum, ...]
    codes: tuple[str, ...]
    record_ids: tuple[int, ...]
    clerks: tuple[str, ...]
    business_types: tuple[str, ...]


def plan(rt: Runtime, quarter: Quarter) -> Draw:
    """The sample the quarter would draw now, for the whole archive (no policy: callers
    filter what they show)."""
    with rt.db.read() as session:
        head = sampling_head(session)
        population = sampling_population(session, quarter.start, quarter.end)
    if head is None:
        raise ConflictError("the audit trail is empty: initialise the archive first")
    seed = derive_seed(quarter, head.hash)
    n = sample_size(len(population))
    chosen, strata = choose(population, seed, n)
    return Draw(
        quarter=quarter,
        seed=seed,
        head_id=head.id,
        head_hash=head.hash,
        population=len(population),
        size=n,
        strata=tuple(strata),
        codes=tuple(r.archive_code for r in chosen),
        record_ids=tuple(r.record_id for r in chosen),
        clerks=tuple(r.clerk for r in chosen),
        business_types=tuple(r.business_type for r in chosen),
    )


def _visible_codes(rt: Runtime, user: UserInfo, d: Draw) -> list[str]:
    seen = visible_classes(user)
    with rt.db.read() as session:
        records = [get_record_by_id(session, rid) for rid in d.record_ids]
    return [r.archive_code for r in records if r.security_class in seen]


def preview(rt: Runtime, user: UserInfo, quarter_text: str) -> list[str]:
    """The archive codes a draw of the quarter would take now, of those ``user`` may see; it
    keeps nothing but a ``sampling.preview`` event, which does not move the seed.

    :raises PermissionDeniedError: not ``sampling.run`` (audited).
    :raises InvalidInputError: a malformed quarter.
    """
    require_action(rt, user, Action.sampling_run)
    quarter = parse_quarter(quarter_text)
    d = plan(rt, quarter)
    with rt.db.write() as session:
        record_event(
            session,
            actor=user.name,
            action="sampling.preview",
            target=f"sampling:{quarter}",
            detail={"seed": d.seed, "head_id": d.head_id},
        )
    return _visible_codes(rt, user, d)


def draw(rt: Runtime, user: UserInfo, quarter_text: str, *, deep: bool = False) -> AuditInfo:
    """Draw the quarter's sample, run each item's automatic checks, and keep it all.

    :param deep: decrypt every copy and render every page in the checks (slow); by default
        the copies are checked by size and ciphertext hash.
    :raises PermissionDeniedError: not ``sampling.run`` (audited).
    :raises InvalidInputError: a malformed quarter, or no records in it.
    :raises ConflictError: the quarter has been drawn already.
    """
    require_action(rt, user, Action.sampling_run)
    quarter = parse_quarter(quarter_text)
    with rt.db.read() as session:
        if any(a.quarter == str(quarter) for a in list_audits(session)):
            raise ConflictError(f"{quarter} has been drawn already; open its audit")
    d = plan(rt, quarter)
    if d.population == 0:
        raise InvalidInputError(f"no records were created in {quarter}: nothing to sample")
    items = []
    with rt.db.read() as session:
        records = [get_record_by_id(session, rid) for rid in d.record_ids]
    for record, clerk in zip(records, d.clerks, strict=True):
        checked = automatic_checks(rt, record, deep=deep, actor=user.name)
        worst = _worst(checked)
        items.append(
            DrawnItem(
                record_id=record.id,
                archive_code=record.archive_code,
                business_type=record.business_type,
                clerk=clerk,
                auto_outcome=worst.value,
                auto_items=[i.as_dict() for i in checked],
            )
        )
    with rt.db.write() as session:
        audit = store_draw(
            session,
            quarter=str(quarter),
            seed=d.seed,
            head=ChainHead(d.head_id, d.head_hash),
            population=d.population,
            defect_rate=DEFECT_RATE,
            confidence=CONFIDENCE,
            items=items,
            actor=user.name,
        )
    log.info(
        "sampling drawn",
        extra={"event": "sampling_draw", "audit_id": audit.id, "items": len(items)},
    )
    return audit


# --- automatic checks ------------------------------------------------------------------


_WORST = {Outcome.fail: 3, Outcome.warn: 2, Outcome.passed: 1, Outcome.skipped: 0}


def _worst(items: Iterable[CheckItem]) -> Outcome:
    found = [i.outcome for i in items if i.outcome is not Outcome.skipped]
    return max(found, key=_WORST.__getitem__, default=Outcome.passed)


def _item(
    prop: Property,
    rule: str,
    name: str,
    problems: Sequence[str],
    *,
    warn: Sequence[str] = (),
    ok: str = "",
) -> CheckItem:
    if problems:
        return CheckItem(prop, rule, name, Outcome.fail, "; ".join(problems))
    if warn:
        return CheckItem(prop, rule, name, Outcome.warn, "; ".join(warn))
    return CheckItem(prop, rule, name, Outcome.passed, ok)


def _naming(record: RecordInfo) -> CheckItem:
    """N1: the archive code follows 年份-业务类型-编号 and says the record's own year, type
    and serial."""
    problems = []
    try:
        code = parse_code(record.archive_code)
    except InvalidInputError:
        problems.append("the code does not read 年份-业务类型-编号")
    else:
        if (code.year, code.business_type, code.serial) != (
            record.year,
            record.business_type,
            record.serial,
        ):
            problems.append("the code names another year, type or serial than the record's")
    return _item(
        Property.authenticity,
        "N1",
        "archive code follows the naming rule",
        problems,
        ok=record.archive_code,
    )


def _ocr(rt: Runtime, record: RecordInfo) -> CheckItem:
    """O1: every page has its OCR text, read with at least the quality gate's confidence."""
    with rt.db.read() as session:
        pages = list_pages(session, record.id)
    floor = rt.settings.quality.min_confidence
    problems = [
        f"page {p.number} has no text"
        for p in pages
        if p.state is not PageState.done or p.text_object_id is None
    ]
    if not pages:
        problems.append("no pages")
    low = [
        f"page {p.number} read at {p.confidence:.2f} (< {floor:g})"
        for p in pages
        if p.confidence is not None and p.confidence < floor
    ]
    return _item(
        Property.usability,
        "O1",
        "OCR present and confident",
        problems[:10],
        warn=low[:10],
        ok=f"{len(pages)} pages with text",
    )


def _retention(rt: Runtime, record: RecordInfo, now: dt.datetime) -> CheckItem:
    """R1: the record's retention can be counted (its type has a period, and a record counted
    from graduation names its student), and it is not past it unnoticed."""
    with rt.db.read() as session:
        schedule = next(
            (s for s in list_schedules(session) if s.business_type == record.business_type), None
        )
        graduated = get_graduation_year(session, record.student_no) if record.student_no else None
    if schedule is None:
        return _item(
            Property.integrity,
            "R1",
            "retention class right",
            [f"no retention schedule for {record.business_type}"],
        )
    problems: list[str] = []
    warn: list[str] = []
    start: int | None = record.year
    if schedule.trigger is RetentionTrigger.graduation:
        start = graduated
        if not record.student_no:
            problems.append("counted from graduation, but the record names no student number")
    due = due_year(start, schedule.retention) if start is not None else None
    if due is not None and due <= now.year:
        warn.append(f"past its retention since {due}: the retention run should propose it")
    when = f", due {due}" if due is not None else ""
    return _item(
        Property.integrity,
        "R1",
        "retention class right",
        problems,
        warn=warn,
        ok=f"{schedule.retention.value} from {schedule.trigger.value}{when}",
    )


def automatic_checks(
    rt: Runtime, record: RecordInfo, *, deep: bool, actor: str, now: dt.datetime | None = None
) -> list[CheckItem]:
    """Every automatic check of a sampled record: the four-property check's rules (both
    copies' fixity A1, the sidecar A3, audit events consistent A4, pages I1, metadata I2,
    the index U4, digitization quality U5, security class S2, ...) and the audit's own:
    the naming rule (N1), OCR present and confident (O1) and the retention class (R1)."""
    result = check_record(rt, record, deep=deep, actor=actor)
    out = list(result.items)
    if any(i.rule == "I0" for i in out):  # disposed since the draw: nothing more to check
        return out
    out.append(_naming(record))
    out.append(_ocr(rt, record))
    out.append(_retention(rt, record, now or dt.datetime.now(dt.UTC)))
    return out


# --- what a person sees of an audit -------------------------------------------------------


@dataclass(frozen=True)
class AuditView:
    """One audit as ``user`` may see it: their items, findings and figures."""

    audit: AuditInfo
    items: tuple[ItemInfo, ...]
    findings: tuple[FindingInfo, ...]
    strata: tuple[Stratum, ...]
    estimate: Estimate
    manual_done: int
    sees_everything: bool
    overdue_grants: tuple[Mapping[str, Any], ...]

    def population_shown(self) -> int | None:
        """The quarter's population, for a reader of every class; ``None`` for others (it
        would count records hidden from them)."""
        return self.audit.population if self.sees_everything else None


def _strata(items: Sequence[ItemInfo]) -> tuple[Stratum, ...]:
    counts: dict[tuple[str, str], int] = {}
    for i in items:
        counts[(i.business_type, i.clerk)] = counts.get((i.business_type, i.clerk), 0) + 1
    return tuple(Stratum(t, c, 0, n) for (t, c), n in sorted(counts.items()))


def audits_for(rt: Runtime, user: UserInfo) -> list[tuple[AuditInfo, int]]:
    """Every draw with the number of items ``user`` sees in it, newest quarter first.

    :raises PermissionDeniedError: not ``sampling.run`` (audited).
    """
    require_action(rt, user, Action.sampling_run)
    with rt.db.read() as session:
        return [(a, len(list_items(session, a.id, who=user))) for a in list_audits(session)]


def audit_view(
    rt: Runtime, user: UserInfo, audit_id: int, *, now: dt.datetime | None = None
) -> AuditView:
    """One audit for ``user``: the items and findings on records they may see, and the error
    rate estimated over those items.

    :raises PermissionDeniedError: not ``sampling.run`` (audited).
    :raises NotFoundError: no such audit.
    """
    require_action(rt, user, Action.sampling_run)
    with rt.db.read() as session:
        audit = get_audit(session, audit_id)
        items = tuple(list_items(session, audit_id, who=user))
        findings = tuple(list_findings(session, who=user, audit_id=audit_id))
    defective = sum(1 for i in items if i.is_defective)
    return AuditView(
        audit=audit,
        items=items,
        findings=findings,
        strata=_strata(items),
        estimate=estimate(len(items), defective),
        manual_done=sum(1 for i in items if i.manual is not None),
        sees_everything=sees_every_class(user),
        overdue_grants=overdue_grants(rt, user, now=now),
    )


def sees_every_class(user: UserInfo) -> bool:
    """Whether ``user`` sees records of every class: only they get an audit's population and
    size, which count records hidden from others."""
    return visible_classes(user) == frozenset(SecurityClass)


def note_report(rt: Runtime, user: UserInfo, view: AuditView, fmt: str) -> None:
    """Leave the trace of a report taken away (``sampling.report``)."""
    with rt.db.write() as session:
        record_event(
            session,
            actor=user.name,
            action="sampling.report",
            target=f"sampling:{view.audit.quarter}",
            detail={"audit_id": view.audit.id, "format": fmt, "items": len(view.items)},
        )


# --- the manual checklist -------------------------------------------------------------------


def _require_on(rt: Runtime, user: UserInfo, action: Action, thing: Any, target: str) -> None:
    """The policy on a sampled record, audited when denied (a hidden one is 404 already)."""
    try:
        require(user, action, thing)
    except PermissionDeniedError as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, target, error=exc)
        raise


def _item_for(rt: Runtime, user: UserInfo, item_id: int, action: Action) -> ItemInfo:
    try:
        require(user, action)
        with rt.db.read() as session:
            return get_item(session, item_id, who=user)
    except (PermissionDeniedError, NotFoundError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, f"sampling-item:{item_id}", error=exc)
        raise


def manual_check(
    rt: Runtime,
    user: UserInfo,
    item_id: int,
    answers: Mapping[str, bool],
    *,
    note: str | None = None,
) -> ItemInfo:
    """Fill in an item's checklist: every question of :data:`CHECKLIST`, yes or no.

    :raises NotFoundError: no such item, or its record is hidden.
    :raises PermissionDeniedError: not ``sampling.check`` on the record (a contract item:
        directors only); audited.
    :raises InvalidInputError: a question missing or unknown, or a note over 4000 characters.
    """
    item = _item_for(rt, user, item_id, Action.sampling_check)
    _require_on(rt, user, Action.sampling_check, item, f"record:{item.archive_code}")
    if set(answers) != set(CHECKLIST):
        raise InvalidInputError("answer each question of the checklist: " + ", ".join(CHECKLIST))
    if note is not None and len(note) > 4000:
        raise InvalidInputError("the note is longer than 4000 characters")
    with rt.db.write() as session:
        return record_checklist(
            session,
            item_id,
            {k: bool(answers[k]) for k in CHECKLIST},
            note=(note or "").strip() or None,
            actor=user.name,
        )


# --- findings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceUpload:
    """An evidence file received whole into intake's private directory (a scan, photo or PDF,
    as intake takes them: ``api.services.upload_form.receive_form``), and the name the
    client gave it. The caller removes the directory afterwards."""

    upload: Upload
    file_name: str | None


def evidence_of(form: ReceivedForm) -> EvidenceUpload | None:
    """The one evidence file of a received form, if it has one.

    :raises InvalidInputError: more than one file, or the file was refused (not a scan, a
        photo or a PDF; too large).
    """
    if len(form.files) > 1:
        raise InvalidInputError("give one evidence file")
    if not form.files:
        return None
    part = form.files[0]
    if isinstance(part.upload, RefusedUpload):
        raise part.upload.error
    return EvidenceUpload(part.upload, part.name)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while piece := fh.read(CHUNK):
            yield piece


def _with_evidence(
    rt: Runtime,
    record_id: int,
    evidence: EvidenceUpload | None,
    *,
    actor: str,
    keep: Callable[[Any, EvidenceFile | None], FindingInfo],
) -> FindingInfo:
    """Write the evidence file (if any) encrypted to both stores as an object of the record,
    then ``keep(session, file)`` in the transaction that records the object."""
    if evidence is None:
        with rt.db.write() as session:
            return keep(session, None)
    upload = evidence.upload
    object_id = new_object_id()
    vault = rt.vault
    result = vault.write(object_id, _file_chunks(upload.path))
    kept = EvidenceFile(
        object_id=object_id,
        file_name=sanitize_upload_name(evidence.file_name, upload.media_type),
        content_type=upload.media_type,
        size=upload.size,
        sha256=upload.digest("sha256"),
    )
    with discard_on_error(vault, object_id), rt.db.write() as session:
        if result.plaintext_sha256 != upload.digest(result.algorithm):
            raise CorruptDataError("the evidence file changed while it was being stored")
        add_object(
            session,
            object_id=object_id,
            record_id=record_id,
            role=ObjectRole.evidence,
            **written(result),
        )
        queue_replication(rt, session, object_id, result, actor=actor)
        return keep(session, kept)


def _finding_for(rt: Runtime, user: UserInfo, finding_id: int, action: Action) -> FindingInfo:
    try:
        require(user, action)
        with rt.db.read() as session:
            return get_finding(session, finding_id, who=user)
    except (PermissionDeniedError, NotFoundError) as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, f"finding:{finding_id}", error=exc)
        raise


def _owner(rt: Runtime, item: ItemInfo, owner: str | None) -> UserInfo:
    with rt.db.read() as session:
        if owner:
            try:
                person = get_user(session, owner)
            except NotFoundError:
                raise InvalidInputError(f"no user named {owner!r} to own the finding") from None
        else:
            clerk = next((u for u in list_users(session) if u.id == item.created_by), None)
            if clerk is None:
                raise InvalidInputError("name the finding's owner: the record has no clerk")
            person = clerk
    if person.disabled or not is_allowed(person.role, Action.finding_respond, item.security_class):
        raise InvalidInputError(f"{person.name} may not answer findings about this record")
    return person


def file(
    rt: Runtime,
    user: UserInfo,
    item_id: int,
    *,
    severity: str,
    summary: str,
    owner: str | None = None,
    now: dt.datetime | None = None,
) -> FindingInfo:
    """File a finding against a sampled item, due in 7 days.

    :param owner: who must fix it (a user who may answer findings on the record); by default
        the clerk who entered the record.
    :raises NotFoundError: no such item, or its record is hidden.
    :raises PermissionDeniedError: not ``finding.manage`` on the record (audited).
    :raises InvalidInputError: an unknown severity, an empty summary, an owner who may not
        answer it.
    """
    item = _item_for(rt, user, item_id, Action.finding_manage)
    _require_on(rt, user, Action.finding_manage, item, f"record:{item.archive_code}")
    try:
        level = FindingSeverity(severity)
    except ValueError:
        names = ", ".join(s.value for s in FindingSeverity)
        raise InvalidInputError(f"a finding's severity is one of {names}") from None
    person = _owner(rt, item, owner)
    at = now or dt.datetime.now(dt.UTC)
    with rt.db.write() as session:
        return file_finding(
            session,
            item_id,
            severity=level,
            summary=summary,
            owner_id=person.id,
            due_at=at + DEADLINE,
            actor=user.name,
            now=at,
        )


def answer(
    rt: Runtime,
    user: UserInfo,
    finding_id: int,
    *,
    note: str = "",
    evidence: EvidenceUpload | None = None,
    now: dt.datetime | None = None,
) -> FindingInfo:
    """The owner's answer: what was fixed, with a note and/or an evidence file.

    :raises NotFoundError: no such finding, or its record is hidden.
    :raises PermissionDeniedError: not ``finding.respond`` on the record, or not the owner
        (audited).
    :raises InvalidInputError: neither a note nor a file; a file too large or empty.
    :raises ConflictError: the finding is closed.
    """
    finding = _finding_for(rt, user, finding_id, Action.finding_respond)
    target = f"record:{finding.archive_code}"
    _require_on(rt, user, Action.finding_respond, finding, target)
    if finding.owner_id != user.id:
        exc = PermissionDeniedError(f"only the finding's owner, {finding.owner}, answers it")
        with rt.db.write() as session:
            audit_denied(session, user, Action.finding_respond, target, error=exc)
        raise exc
    if not note.strip() and evidence is None:
        raise InvalidInputError("an answer needs a note or a file: what was fixed")
    return _with_evidence(
        rt,
        finding.record_id,
        evidence,
        actor=user.name,
        keep=lambda session, ev: answer_finding(
            session, finding_id, note=note, file=ev, actor=user.name, now=now
        ),
    )


def close(
    rt: Runtime,
    user: UserInfo,
    finding_id: int,
    *,
    note: str = "",
    evidence: EvidenceUpload | None = None,
    now: dt.datetime | None = None,
) -> FindingInfo:
    """Close a finding with evidence (a note or a file here, or the owner's answer's).

    :raises NotFoundError: no such finding, or its record is hidden.
    :raises PermissionDeniedError: not ``finding.manage`` on the record (audited).
    :raises ConflictError: closed already, or no evidence at all.
    """
    finding = _finding_for(rt, user, finding_id, Action.finding_manage)
    _require_on(rt, user, Action.finding_manage, finding, f"record:{finding.archive_code}")
    if finding.state.value == "closed":
        raise ConflictError("the finding is closed already")
    if not note.strip() and evidence is None and not finding.evidence:
        raise ConflictError("closing a finding needs evidence: a file or a note of what was fixed")
    return _with_evidence(
        rt,
        finding.record_id,
        evidence,
        actor=user.name,
        keep=lambda session, ev: close_finding(
            session, finding_id, note=note, file=ev, actor=user.name, now=now
        ),
    )


def findings_for(rt: Runtime, user: UserInfo, *, open_only: bool = False) -> list[FindingInfo]:
    """The findings ``user`` deals with: all on records they may see for those who manage
    findings, else the ones they own.

    :raises PermissionDeniedError: neither ``finding.manage`` nor ``finding.respond``
        (audited).
    """
    manages = is_allowed(user.role, Action.finding_manage)
    if not manages:
        require_action(rt, user, Action.finding_respond)
    with rt.db.read() as session:
        return list_findings(
            session, who=user, owner_id=None if manages else user.id, open_only=open_only
        )


def overdue_findings(rt: Runtime, user: UserInfo, *, now: dt.datetime | None = None) -> int:
    """How many findings on records ``user`` may see are past their deadline (the
    dashboard's flag); no policy beyond visibility: the count names nothing."""
    with rt.db.read() as session:
        return count_overdue_findings(session, who=user, now=now or dt.datetime.now(dt.UTC))


# --- break-glass grants ---------------------------------------------------------------------


def overdue_grants(
    rt: Runtime, user: UserInfo, *, now: dt.datetime | None = None
) -> tuple[Mapping[str, Any], ...]:
    """Break-glass grants whose paperwork is overdue (docs/breakglass.md), for every sampling
    audit's report (issue #7): who held the grant and when the paperwork was due. Names a
    user and a date only, never a record."""
    at = now or dt.datetime.now(dt.UTC)
    with rt.db.read() as session:
        grants = catalog_overdue_grants(session, at)
    return tuple(
        {
            "id": g.id,
            "user": g.grantee,
            "due": (g.granted_at + dt.timedelta(days=PAPERWORK_DAYS)).strftime("%Y-%m-%d")
            if g.granted_at
            else "",
        }
        for g in grants
    )


# --- reminders ------------------------------------------------------------------------------

SAMPLING_REMIND = "sampling.remind"
"""Queued daily by the scheduler: reminds the owners of findings due within 2 days or late."""
REMIND_PRIORITY = 300


class RemindPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")


def remind(rt: Runtime, *, actor: str, now: dt.datetime | None = None) -> tuple[int, int]:
    """Leave a ``finding.remind`` event for each finding due within :data:`REMIND_WITHIN`
    or overdue, at most one a day each. Returns (reminded, of them overdue)."""
    at = now or dt.datetime.now(dt.UTC)
    with rt.db.write() as session:
        due = findings_to_remind(
            session, now=at, within=REMIND_WITHIN, every=dt.timedelta(hours=23)
        )
        for finding in due:
            mark_reminded(session, finding.id, actor=actor, now=at)
    late = sum(1 for f in due if f.is_overdue(at))
    return len(due), late


@register(SAMPLING_REMIND, RemindPayload)
def remind_job(ctx: JobContext[Any], payload: RemindPayload) -> None:
    rt = job_runtime(ctx, "sampling")
    reminded, late = remind(rt, actor=worker_actor(ctx))
    with rt.db.write() as session:
        report_schedule_run(session, SAMPLING_REMIND, {"reminded": reminded, "overdue": late})
