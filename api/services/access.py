"""Asking the policy for a system action on behalf of a person, leaving a trace when denied.

The policy (:mod:`catalog.policy`) decides; this only pairs its answer with the audit event a
denied attempt owes (留痕), so the API's services cannot forget it.
"""

from __future__ import annotations

from api.services.runtime import Runtime
from catalog import Action, UserInfo, audit_denied, require
from dangan.errors import PermissionDeniedError

__all__ = ["require_action"]


def require_action(rt: Runtime, user: UserInfo, action: Action, target: str | None = None) -> None:
    """Allow ``user`` to do the system-wide (or any-record) ``action`` or raise, audited.

    :raises PermissionDeniedError: the role may not do it, or the user is disabled.
    """
    try:
        require(user, action)
    except PermissionDeniedError as exc:
        with rt.db.write() as session:
            audit_denied(session, user, action, target, error=exc)
        raise
