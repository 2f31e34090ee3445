"""The dashboard's figures for one person: the catalog counts, over the records they may see.

The page (``/``) and the JSON API (``GET /api/v1/stats``) both call :func:`dashboard`, so a
script reads exactly the figures a person sees. Nothing here names a record.
"""

from __future__ import annotations

import datetime as dt

from api.services.access import require_action
from api.services.runtime import Runtime
from catalog import Action, ArchiveStats, UserInfo, archive_stats

__all__ = ["dashboard"]


def dashboard(rt: Runtime, user: UserInfo, *, now: dt.datetime | None = None) -> ArchiveStats:
    """The office's figures as ``user`` may see them (a frozen dataclass of counts).

    :param now: the end of the intake-per-day window (default: now).
    :raises PermissionDeniedError: ``user`` may not read the figures (audited).
    """
    require_action(rt, user, Action.stats_read)
    with rt.db.read() as session:
        return archive_stats(session, user, now=now)
