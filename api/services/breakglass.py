"""Break-glass (紧急授权) for people: asking, granting, revoking, filing the paperwork, approving
it, and the overdue list (``docs/breakglass.md``). The API, the pages and the CLI all call
these, so one path goes through the policy and the audit.

Who may see a grant: the grantee, and whoever may grant, approve or read the audit trail.
A grant anyone else asks about answers exactly as a missing one. The paperwork is encrypted
into the vault as it arrives (both stores, like a scan) and never touches the disk in the
clear; the catalog names it by object id.

What this module must never do: decide a permission itself (it asks ``catalog.policy``), or
log or audit the paperwork's bytes or a reason's words.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from api.services.access import require_action
from api.services.jobs import discard_on_error, queue_replication, written
from api.services.reading import mark_bad_copy
from api.services.runtime import Runtime
from api.services.vault import load_configured_keyring
from catalog import (
    Action,
    GrantInfo,
    GrantState,
    ObjectRole,
    UserInfo,
    add_object,
    approve_paperwork,
    audit_denied,
    file_paperwork,
    get_grant,
    get_object,
    grant_access,
    grant_not_found,
    is_allowed,
    list_grants,
    overdue_grants,
    record_event,
    request_access,
    revoke_grant,
)
from dangan.errors import InvalidInputError, KeyringError, NotFoundError, PermissionDeniedError
from vault import ObjectReader, WrappedKey, new_object_id

__all__ = [
    "MAX_PAPERWORK_BYTES",
    "Paperwork",
    "approve",
    "ask",
    "check_paperwork_upload",
    "grant",
    "grants",
    "one",
    "overdue",
    "paperwork",
    "revoke",
    "sees_every_grant",
    "upload_paperwork",
]

MAX_PAPERWORK_BYTES: Final = 20 * 1024 * 1024
# A document is a PDF or a scan; anything else is refused by its first bytes, not its name.
_KINDS: Final = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def sees_every_grant(user: UserInfo) -> bool:
    """Whether ``user`` sees every grant: those who grant, approve, or read the audit trail."""
    return any(
        is_allowed(user, a)
        for a in (Action.breakglass_grant, Action.breakglass_approve, Action.audit_read)
    )


def _target(grant_id: int) -> str:
    return f"breakglass:{grant_id}"


def _visible(rt: Runtime, user: UserInfo, grant_id: int, action: Action) -> GrantInfo:
    """The grant, if ``user`` may see it; a hidden one is audited and answers as a missing one."""
    with rt.db.read() as session:
        try:
            found: GrantInfo | None = get_grant(session, grant_id)
        except NotFoundError:
            found = None
    if found is None or not (sees_every_grant(user) or found.grantee_id == user.id):
        error = grant_not_found(grant_id)
        with rt.db.write() as session:
            audit_denied(session, user, action, _target(grant_id), error=error)
        raise error
    return found


def grants(rt: Runtime, user: UserInfo, *, states: tuple[GrantState, ...] = ()) -> list[GrantInfo]:
    """Grants and requests, newest first: all of them for those who see every grant, one's
    own for everyone else (``breakglass.request``)."""
    require_action(rt, user, Action.breakglass_request)
    mine = None if sees_every_grant(user) else user.id
    with rt.db.read() as session:
        return list_grants(session, grantee_id=mine, states=states)


def one(rt: Runtime, user: UserInfo, grant_id: int) -> GrantInfo:
    """One grant (``breakglass.request``; one's own unless one sees every grant).

    :raises NotFoundError: no such grant, or not one ``user`` may see.
    """
    require_action(rt, user, Action.breakglass_request, _target(grant_id))
    return _visible(rt, user, grant_id, Action.breakglass_request)


def overdue(rt: Runtime, user: UserInfo, *, now: dt.datetime | None = None) -> list[GrantInfo]:
    """Grants past their paperwork's day: every one for those who see every grant, one's own
    for everyone else (the dashboard's tile)."""
    with rt.db.read() as session:
        found = overdue_grants(session, now)
    return found if sees_every_grant(user) else [g for g in found if g.grantee_id == user.id]


def ask(rt: Runtime, user: UserInfo, reason: str) -> GrantInfo:
    """Ask for emergency access for oneself, with a reason (``breakglass.request``)."""
    require_action(rt, user, Action.breakglass_request)
    with rt.db.write() as session:
        return request_access(session, user=user, reason=reason)


def grant(
    rt: Runtime,
    user: UserInfo,
    *,
    grantee: str | None = None,
    request_id: int | None = None,
    hours: int,
    reason: str | None = None,
) -> GrantInfo:
    """Grant a named user (or the one who asked in a request) access for ``hours``
    (``breakglass.grant``)."""
    require_action(rt, user, Action.breakglass_grant)
    with rt.db.write() as session:
        return grant_access(
            session,
            actor=user.name,
            grantee=grantee,
            request_id=request_id,
            hours=hours,
            reason=reason,
        )


def revoke(rt: Runtime, user: UserInfo, grant_id: int, reason: str) -> GrantInfo:
    """Refuse a request or end a grant early (``breakglass.grant``)."""
    require_action(rt, user, Action.breakglass_grant, _target(grant_id))
    with rt.db.write() as session:
        return revoke_grant(session, grant_id, actor=user.name, reason=reason)


def approve(rt: Runtime, user: UserInfo, grant_id: int) -> GrantInfo:
    """Approve a grant's paperwork, closing the grant (``breakglass.approve``)."""
    require_action(rt, user, Action.breakglass_approve, _target(grant_id))
    with rt.db.write() as session:
        return approve_paperwork(session, grant_id, actor=user.name)


def check_paperwork_upload(rt: Runtime, user: UserInfo, grant_id: int) -> GrantInfo:
    """May ``user`` file the paperwork of this grant? The grantee may, and so may whoever may
    grant. Call it before receiving the document.

    :raises NotFoundError: no such grant, or one ``user`` may not see.
    :raises PermissionDeniedError: ``user`` sees it but neither holds it nor may grant.
    """
    require_action(rt, user, Action.breakglass_request, _target(grant_id))
    found = _visible(rt, user, grant_id, Action.breakglass_request)
    if found.grantee_id != user.id and not is_allowed(user, Action.breakglass_grant):
        error = PermissionDeniedError("only the grantee or one who may grant files paperwork")
        with rt.db.write() as session:
            audit_denied(session, user, Action.breakglass_grant, _target(grant_id), error=error)
        raise error
    return found


def _sniffed(chunks: Iterable[bytes]) -> tuple[str, Iterator[bytes]]:
    """The document's type by its first bytes, and the chunks again with the size checked."""
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= 16:
            break
    kind = next((t for magic, t in _KINDS if head.startswith(magic)), None)
    if kind is None:
        raise InvalidInputError("paperwork is a PDF, PNG, JPEG or TIFF document")

    def limited() -> Iterator[bytes]:
        size = len(head)
        yield head
        for chunk in it:
            size += len(chunk)
            if size > MAX_PAPERWORK_BYTES:
                raise InvalidInputError(
                    f"paperwork is at most {MAX_PAPERWORK_BYTES // (1024 * 1024)} MiB"
                )
            yield chunk

    if len(head) > MAX_PAPERWORK_BYTES:
        raise InvalidInputError(f"paperwork is at most {MAX_PAPERWORK_BYTES // (1024 * 1024)} MiB")
    return kind, limited()


def upload_paperwork(
    rt: Runtime, user: UserInfo, grant_id: int, chunks: Iterable[bytes]
) -> GrantInfo:
    """Encrypt the grant's paperwork into the vault and file it under the grant.

    :param chunks: the document, streamed; its type is taken from its first bytes.
    :raises InvalidInputError: empty, not a PDF or image, or over :data:`MAX_PAPERWORK_BYTES`.
    :raises NotFoundError: no such grant, or one ``user`` may not see.
    :raises ConflictError: the grant takes no paperwork (a request, refused, closed).
    """
    check_paperwork_upload(rt, user, grant_id)
    kind, body = _sniffed(chunks)
    object_id = new_object_id()
    vault = rt.vault
    result = vault.write(object_id, body)
    with discard_on_error(vault, object_id), rt.db.write() as session:
        add_object(
            session,
            object_id=object_id,
            record_id=None,
            role=ObjectRole.paperwork,
            **written(result),
        )
        queue_replication(rt, session, object_id, result, actor=user.name)
        return file_paperwork(
            session, grant_id, object_id=object_id, content_type=kind, actor=user.name
        )


@dataclass(frozen=True)
class Paperwork:
    grant: GrantInfo
    content_type: str
    size: int
    chunks: Iterator[bytes]


def paperwork(rt: Runtime, user: UserInfo, grant_id: int) -> Paperwork:
    """Open a grant's paperwork for reading (audited as ``breakglass.paperwork_read``).

    :raises NotFoundError: no such grant, one ``user`` may not see, or no paperwork yet.
    """
    found = one(rt, user, grant_id)
    if found.paperwork_object_id is None:
        raise NotFoundError(f"break-glass grant {grant_id} has no paperwork yet")
    with rt.db.write() as session:
        obj = get_object(session, found.paperwork_object_id)
        record_event(
            session,
            actor=user.name,
            action="breakglass.paperwork_read",
            target=_target(grant_id),
            detail={"object_id": obj.id},
        )
    if obj.wrapped_key is None:
        raise NotFoundError(f"break-glass grant {grant_id} has no paperwork yet")
    wrapped = obj.wrapped_key
    primary = obj.copy_in("primary")
    vault = rt.vault

    def start() -> ObjectReader:
        return vault.read(
            obj.id,
            WrappedKey.from_bytes(wrapped),
            plaintext_sha256=obj.plaintext_sha256,
            ciphertext_sha256=primary.ciphertext_sha256 if primary else None,
            algorithm=obj.digest_algorithm,
            on_bad_copy=lambda status: mark_bad_copy(rt, obj, status, actor=user.name),
        )

    try:
        reader = start()
    except KeyringError:
        vault.keyring = load_configured_keyring(rt.settings)  # rotated by another process
        reader = start()

    def chunks() -> Iterator[bytes]:
        with reader:
            yield from reader

    return Paperwork(
        found, found.paperwork_content_type or "application/octet-stream", obj.size, chunks()
    )
