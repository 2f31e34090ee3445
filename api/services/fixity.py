"""Fixity: prove every copy intact (``dangan verify``) and restore the ones that are not
(``dangan repair``).

The cheap check reads each copy and compares its size and ciphertext SHA-256 with the
catalog's, without any key (a storage operator can run it); the deep check also decrypts each
copy and checks every tag and the plaintext hash. Every problem is collected (not only the
first), and what a check finds is written to the catalog: a copy found bad or missing is marked
so (audited), and the record's status follows. Nothing here reads plaintext out or logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from api.services.jobs import restore_copies
from api.services.runtime import Runtime
from api.services.vault import build_vault
from catalog import (
    CopyInfo,
    CopyState,
    ObjectInfo,
    get_object,
    list_copies,
    record_event,
    refresh_record_status,
    set_copy_state,
)
from dangan.errors import DanganError, NotFoundError, StoreUnavailableError
from vault import CopyStatus, Vault, WrappedKey

__all__ = ["CopyProblem", "RepairReport", "repair_all", "verify_all", "verify_catalog_copy"]

log = logging.getLogger(__name__)

_SLICE = 200


@dataclass(frozen=True)
class CopyProblem:
    """One copy that failed its check: ``bad`` (corrupt), ``missing``, or ``unreachable``."""

    object_id: str
    store: str
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.store} copy of object {self.object_id}: {self.kind} ({self.reason})"


def verify_catalog_copy(vault: Vault, copy: CopyInfo, obj: ObjectInfo, *, deep: bool) -> CopyStatus:
    """Check one copy against what the catalog says of it.

    :param deep: also decrypt it and compare the plaintext hash (needs the keyring).
    :raises StoreUnavailableError: the copy's store cannot be reached.
    """
    wrapped = WrappedKey.from_bytes(obj.wrapped_key) if deep and obj.wrapped_key else None
    return vault.verify_copy(
        copy.store,
        copy.object_id,
        size=copy.size,
        ciphertext_sha256=copy.ciphertext_sha256,
        wrapped_key=wrapped,
        plaintext_sha256=obj.plaintext_sha256 if wrapped else None,
        algorithm=obj.digest_algorithm,
    )


@dataclass
class RepairReport:
    restored: list[tuple[str, str]]
    failed: list[CopyProblem]


def verify_all(
    rt: Runtime,
    *,
    deep: bool = False,
    actor: str = "system",
    progress: Callable[[int], None] | None = None,
) -> list[CopyProblem]:
    """Check every copy of every live object; mark what is found in the catalog.

    :param deep: also decrypt each copy (needs the keyring).
    :param progress: called with the number of copies checked so far, after each slice.
    :returns: every copy that failed, in (object id, store) order.
    :raises KeyringError: ``deep`` without a usable keyring.
    """
    vault = rt.vault if deep else build_vault(rt.settings, with_keyring=False)
    problems: list[CopyProblem] = []
    checked = 0
    after: tuple[str, str] | None = None
    while True:
        with rt.db.read() as session:
            copies = list_copies(session, after=after, limit=_SLICE)
            objects = {c.object_id: get_object(session, c.object_id) for c in copies}
        if not copies:
            break
        after = (copies[-1].object_id, copies[-1].store)
        findings: list[tuple[CopyInfo, CopyStatus]] = []
        for copy in copies:
            obj = objects[copy.object_id]
            try:
                status = verify_catalog_copy(vault, copy, obj, deep=deep)
            except StoreUnavailableError as exc:
                problems.append(CopyProblem(copy.object_id, copy.store, "unreachable", exc.message))
                continue
            findings.append((copy, status))
            if not status.ok:
                kind = "missing" if isinstance(status.error, NotFoundError) else "bad"
                problems.append(
                    CopyProblem(copy.object_id, copy.store, kind, status.reason or kind)
                )
        records = {k: v.record_id for k, v in objects.items()}
        _record_findings(rt, findings, records=records, actor=actor)
        checked += len(copies)
        if progress is not None:
            progress(checked)
    with rt.db.write() as session:
        record_event(
            session,
            actor=actor,
            action="fixity.verify",
            target="vault",
            outcome="ok" if not problems else "error",
            detail={"copies": checked, "problems": len(problems), "deep": deep},
        )
    return problems


def _record_findings(
    rt: Runtime,
    findings: list[tuple[CopyInfo, CopyStatus]],
    *,
    records: dict[str, int | None],
    actor: str,
) -> None:
    """Write one slice's results: states that changed (audited), and each ok copy's time."""
    with rt.db.write() as session:
        changed: set[int] = set()
        for copy, status in findings:
            if status.ok:
                state = CopyState.ok
            elif isinstance(status.error, NotFoundError):
                state = CopyState.missing
            else:
                state = CopyState.bad
            set_copy_state(
                session,
                object_id=copy.object_id,
                store=copy.store,
                state=state,
                actor=actor,
                reason=status.reason,
            )
            record_id = records.get(copy.object_id)
            if record_id is not None and state is not copy.state:
                changed.add(record_id)
        for record_id in sorted(changed):
            refresh_record_status(session, record_id)


def repair_all(
    rt: Runtime, *, actor: str = "system", progress: Callable[[int], None] | None = None
) -> RepairReport:
    """Find bad or missing copies (a keyless :func:`verify_all`) and restore each from the
    good copy; each restored copy is read back before the catalog calls it ``ok``.

    :returns: the copies restored, and those that could not be (no good copy, store down).
    """
    problems = verify_all(rt, actor=actor, progress=progress)
    report = RepairReport(restored=[], failed=[])
    after: tuple[str, str] | None = None
    while True:
        with rt.db.read() as session:
            broken = list_copies(
                session, after=after, limit=_SLICE, states=[CopyState.bad, CopyState.missing]
            )
        if not broken:
            break
        after = (broken[-1].object_id, broken[-1].store)
        for object_id in dict.fromkeys(c.object_id for c in broken):
            try:
                restored = restore_copies(rt, object_id, actor=actor)
            except DanganError as exc:
                # A store out of reach is an operational problem (exit 3), not a finding.
                kind = "unreachable" if isinstance(exc, StoreUnavailableError) else "unrepaired"
                report.failed.extend(
                    CopyProblem(object_id, c.store, kind, exc.message)
                    for c in broken
                    if c.object_id == object_id
                )
                continue
            report.restored.extend((object_id, store) for store in restored)
    report.failed.extend(p for p in problems if p.kind == "unreachable")
    with rt.db.write() as session:
        record_event(
            session,
            actor=actor,
            action="fixity.repair",
            target="vault",
            outcome="ok" if not report.failed else "error",
            detail={"restored": len(report.restored), "failed": len(report.failed)},
        )
    return report
