"""The fixity cycle: every copy of every object checked within ``fixity.period_days``, the
copies checked longest ago first, bad or missing ones repaired from the good copy at once,
and objects with no good copy left marked ``damaged`` (never served; see ``reading.py``).

One core, :func:`check_copies`, serves the cycle's job (``fixity.cycle``, queued by the
scheduler, one slice of copies per job, the next slice queued behind it at a low priority so
that intake's jobs go first) and ``dangan verify`` (every copy, in the same slices). Each check
is written to the catalog per copy (time, result, and for a decrypting check its time), and a
change of a copy's state is audited there. What this module must never do: read plaintext out
(a deep check only hashes it), or log anything but ids and counts.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.services.fixity import CopyProblem, verify_catalog_copy
from api.services.jobs import restore_copies
from api.services.runtime import Runtime, job_runtime, worker_actor
from catalog import (
    STORES,
    CheckResult,
    CopyInfo,
    JobContext,
    ObjectInfo,
    copies_due_for_check,
    count_copies_overdue,
    get_object,
    list_copies,
    record_copy_check,
    record_event,
    refresh_record_status,
    register,
    report_schedule_run,
)
from dangan.errors import CorruptDataError, NotFoundError, StoreUnavailableError
from vault import CopyStatus

__all__ = [
    "FIXITY_CYCLE",
    "FIXITY_PRIORITY",
    "FixityCyclePayload",
    "FixityReport",
    "check_copies",
    "run_cycle_slice",
    "verify_report",
]

log = logging.getLogger(__name__)

FIXITY_CYCLE = "fixity.cycle"
#: Lower runs first; intake's jobs have 100, so a cycle's slices wait for them.
FIXITY_PRIORITY = 500
SLICE = 100


@dataclass
class FixityReport:
    """What a walk found: copies checked (``deep``: decrypted too; ``bytes`` read), intact,
    restored, still bad or missing, out of reach; objects with no good copy left
    (``damaged``); and every copy still in trouble."""

    checked: int = 0
    deep: int = 0
    bytes: int = 0
    ok: int = 0
    bad: int = 0
    missing: int = 0
    repaired: int = 0
    unreachable: int = 0
    damaged: int = 0
    problems: list[CopyProblem] = field(default_factory=list)

    def add(self, other: FixityReport) -> None:
        for name in self.counts():
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.extend(other.problems)

    def counts(self) -> dict[str, int]:
        doc = asdict(self)
        doc.pop("problems")
        return doc

    def to_json(self) -> dict[str, Any]:
        return {**self.counts(), "problems": [asdict(p) for p in self.problems]}


def _result_of(status: CopyStatus) -> CheckResult:
    if status.ok:
        return CheckResult.ok
    return CheckResult.missing if isinstance(status.error, NotFoundError) else CheckResult.bad


def _check_one(
    rt: Runtime, copy: CopyInfo, obj: ObjectInfo, *, deep: bool
) -> tuple[CheckResult, str | None]:
    try:
        status = verify_catalog_copy(rt.vault, copy, obj, deep=deep)
    except StoreUnavailableError as exc:
        return CheckResult.unreachable, exc.message
    return _result_of(status), status.reason


def check_copies(
    rt: Runtime,
    copies: Sequence[CopyInfo],
    *,
    deep: Callable[[CopyInfo], bool],
    repair: bool,
    actor: str,
) -> FixityReport:
    """Check each copy, record each result, and (with ``repair``) restore every bad or missing
    copy from a good one, which is read back before it counts.

    Before a repair the object's other copies are checked too (the catalog's ``ok`` may be
    stale), so a repair never copies a bad source. An object left with no good copy is marked
    ``damaged`` by the catalog and counted.

    :param deep: which copies to decrypt as well (needs the keyring).
    :raises KeyringError: a deep check without a usable keyring (no finding: an operator's
        problem).
    """
    report = FixityReport()
    with rt.db.read() as session:
        objects: dict[str, ObjectInfo] = {}
        for c in copies:
            if c.object_id not in objects:
                try:
                    objects[c.object_id] = get_object(session, c.object_id)
                except NotFoundError:
                    continue
    seen: dict[tuple[str, str], tuple[CheckResult, str | None]] = {}

    def check(copy: CopyInfo, obj: ObjectInfo) -> None:
        is_deep = deep(copy) and not obj.is_shredded
        result, reason = _check_one(rt, copy, obj, deep=is_deep)
        seen[(copy.object_id, copy.store)] = (result, reason)
        report.checked += 1
        report.deep += int(is_deep)
        report.bytes += copy.size
        _write(rt, copy, obj, result, deep=is_deep, actor=actor, reason=reason)

    for copy in copies:
        obj = objects.get(copy.object_id)
        if obj is not None and not obj.is_shredded:
            check(copy, obj)
    if repair:
        for object_id in {k[0] for k, (r, _) in seen.items() if r in _BROKEN}:
            obj = objects[object_id]
            for other in obj.copies:  # the source must be proven good first
                if (object_id, other.store) not in seen:
                    check(other, obj)
            if any(seen[(object_id, c.store)][0] is CheckResult.ok for c in obj.copies):
                _repair(rt, obj, seen, actor=actor)
    for (object_id, store), (result, reason) in sorted(seen.items()):
        if result is CheckResult.ok:
            report.ok += 1
        elif result is CheckResult.repaired:
            report.repaired += 1
        elif result is CheckResult.unreachable:
            report.unreachable += 1
            report.problems.append(CopyProblem(object_id, store, "unreachable", reason or ""))
        else:
            report.problems.append(CopyProblem(object_id, store, result.value, reason or ""))
    for result, _reason in seen.values():
        report.bad += int(result is CheckResult.bad)
        report.missing += int(result is CheckResult.missing)
    with rt.db.read() as session:
        for object_id in {k[0] for k in seen}:
            try:
                report.damaged += int(get_object(session, object_id).is_damaged)
            except NotFoundError:
                continue
    return report


_BROKEN = (CheckResult.bad, CheckResult.missing)


def _write(
    rt: Runtime,
    copy: CopyInfo,
    obj: ObjectInfo,
    result: CheckResult,
    *,
    deep: bool,
    actor: str,
    reason: str | None,
) -> None:
    with rt.db.write() as session:
        try:
            before = get_object(session, obj.id)
            record_copy_check(
                session,
                object_id=copy.object_id,
                store=copy.store,
                result=result,
                deep=deep,
                actor=actor,
                reason=reason,
            )
        except NotFoundError:
            return  # disposed of meanwhile
        after = get_object(session, obj.id)
        changed = [c.state for c in before.copies] != [c.state for c in after.copies]
        if obj.record_id is not None and changed:
            refresh_record_status(session, obj.record_id)


def _repair(
    rt: Runtime,
    obj: ObjectInfo,
    seen: dict[tuple[str, str], tuple[CheckResult, str | None]],
    *,
    actor: str,
) -> None:
    try:
        restored = restore_copies(rt, obj.id, actor=actor)
    except (CorruptDataError, NotFoundError):
        return  # no good copy after all, or disposed of: the marks stay
    except StoreUnavailableError as exc:
        for store in STORES:
            if seen.get((obj.id, store), (None,))[0] in _BROKEN:
                seen[(obj.id, store)] = (CheckResult.unreachable, exc.message)
        return
    with rt.db.write() as session:
        for store in restored:
            if seen.get((obj.id, store), (None,))[0] in _BROKEN:
                record_copy_check(
                    session,
                    object_id=obj.id,
                    store=store,
                    result=CheckResult.repaired,
                    deep=False,
                    actor=actor,
                )
                seen[(obj.id, store)] = (CheckResult.repaired, None)


def verify_report(
    rt: Runtime,
    *,
    deep: bool = False,
    repair: bool = False,
    actor: str = "system",
    progress: Callable[[int], None] | None = None,
) -> FixityReport:
    """``dangan verify``: check every copy of every live object, in slices; with ``repair``,
    restore what can be restored as the cycle does. Audited as ``fixity.verify``.

    :raises KeyringError: ``deep`` without a usable keyring.
    """
    report = FixityReport()
    after: tuple[str, str] | None = None
    while True:
        with rt.db.read() as session:
            copies = list_copies(session, after=after, limit=SLICE)
        if not copies:
            break
        after = (copies[-1].object_id, copies[-1].store)
        report.add(check_copies(rt, copies, deep=lambda _c: deep, repair=repair, actor=actor))
        if progress is not None:
            progress(report.checked)
    with rt.db.write() as session:
        record_event(
            session,
            actor=actor,
            action="fixity.verify",
            target="vault",
            outcome="ok" if not report.problems else "error",
            detail={**report.counts(), "deep": deep, "repair": repair},
        )
    return report


class FixityCyclePayload(BaseModel):
    """One slice of a cycle's run. The scheduler queues the first (empty payload); each slice
    queues the next with what is left of the run's copies and bytes, and the tally so far."""

    model_config = ConfigDict(extra="forbid")

    run: int | None = Field(default=None, ge=1)  # the first slice's job id
    slice: int = Field(default=0, ge=0)
    remaining: int | None = Field(default=None, ge=0)
    budget: int | None = Field(default=None, ge=0)
    skip_stores: list[str] = Field(default_factory=list, max_length=2)
    tally: dict[str, int] = Field(default_factory=dict)


def _quota(rt: Runtime) -> int:
    """How many copies a run must check for every copy to be checked within the period: its
    even share of all copies, or every overdue copy if there are more."""
    cfg = rt.settings.fixity
    with rt.db.read() as session:
        total, overdue = count_copies_overdue(session, period_days=cfg.period_days)
    runs = cfg.period_days * 24 * 60 / cfg.interval_minutes
    return max(math.ceil(total / runs), overdue)


def _pick_deep(copies: Sequence[CopyInfo], share: float, rng: random.Random) -> set[str]:
    """The copies to decrypt: the share of the slice (its fraction drawn at random), the ones
    deep-checked longest ago first."""
    k = min(len(copies), math.floor(len(copies) * share + rng.random()))
    order = sorted(copies, key=lambda c: (c.deep_checked_at is not None, c.deep_checked_at))
    return {f"{c.object_id}/{c.store}" for c in order[:k]}


def run_cycle_slice(
    rt: Runtime,
    payload: FixityCyclePayload,
    *,
    job_id: int,
    actor: str,
    rng: random.Random | None = None,
) -> FixityReport:
    """Check one slice of the cycle and queue the next one if the run is not over."""
    cfg = rt.settings.fixity
    rng = rng or random.Random(job_id)  # noqa: S311 - which copies get decrypted; no secret
    remaining = _quota(rt) if payload.remaining is None else payload.remaining
    budget = cfg.max_bytes_per_run if payload.budget is None else payload.budget
    with rt.db.read() as session:
        candidates = copies_due_for_check(
            session, limit=min(SLICE, max(remaining, 0)), skip_stores=payload.skip_stores
        )
    picked: list[CopyInfo] = []
    for copy in candidates:
        if picked and copy.size > budget:
            break
        picked.append(copy)
        budget = max(budget - copy.size, 0)
    deep_ids = _pick_deep(picked, cfg.deep_share, rng)
    report = check_copies(
        rt,
        picked,
        deep=lambda c: f"{c.object_id}/{c.store}" in deep_ids,
        repair=True,
        actor=actor,
    )
    down = sorted(
        set(payload.skip_stores) | {p.store for p in report.problems if p.kind == "unreachable"}
    )
    tally = {k: payload.tally.get(k, 0) + v for k, v in report.counts().items()}
    remaining -= len(picked)
    run = payload.run or job_id
    more = remaining > 0 and budget > 0 and len(picked) == len(candidates) == SLICE
    with rt.db.write() as session:
        if more and len(down) < len(STORES):
            nxt = FixityCyclePayload(
                run=run,
                slice=payload.slice + 1,
                remaining=remaining,
                budget=budget,
                skip_stores=down,
                tally=tally,
            )
            rt.enqueue(
                session,
                FIXITY_CYCLE,
                nxt,
                key=f"{FIXITY_CYCLE}:{run}:{nxt.slice}",
                actor=actor,
                priority=FIXITY_PRIORITY,
            )
        else:
            if remaining > 0 and budget == 0:
                log.warning(
                    "fixity.max_bytes_per_run is too small to check every copy within the period",
                    extra={"event": "fixity.throttled", "job_id": job_id},
                )
            report_schedule_run(session, FIXITY_CYCLE, tally)
            record_event(
                session,
                actor=actor,
                action=FIXITY_CYCLE,
                target="vault",
                outcome="ok"
                if not (tally["bad"] + tally["missing"] + tally["damaged"])
                else "error",
                detail={**tally, "run": run, "slices": payload.slice + 1},
            )
    return report


@register(FIXITY_CYCLE, FixityCyclePayload)
def fixity_cycle(ctx: JobContext[Any], payload: FixityCyclePayload) -> None:
    """One slice of the fixity cycle (see :func:`run_cycle_slice`)."""
    rt = job_runtime(ctx, "fixity")
    run_cycle_slice(rt, payload, job_id=ctx.job.id, actor=worker_actor(ctx))
