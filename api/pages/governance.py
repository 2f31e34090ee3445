"""The governance pages: the audit trail (auditors, directors) with its verification, and the
users page (user management for the admin).

Both only read here; verifying the chain and every change to a user go through the JSON API
from ``api/static/audit.js`` and ``api/static/users.js``, so the pages and scripts share one
path through the policy and the audit. Who may open either page is the policy's business
(the services raise, the error page answers 403); this module never decides it itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, render
from api.pages.labels import N_
from api.services import accounts
from api.services.trail import read_trail
from catalog import Action, AuditEventInfo, Role, UserInfo, is_allowed
from catalog.policy import RECORD_TARGET_PREFIX
from dangan.errors import InvalidInputError

router = APIRouter(include_in_schema=False)

PAGE_SIZE: Final = 50
# Detail is shown on one line, cut at this many characters (the whole of it in a tooltip).
DETAIL_CHARS: Final = 160
OUTCOMES: Final = {"ok": N_("ok"), "denied": N_("denied"), "error": N_("error")}


@dataclass(frozen=True)
class AuditFilters:
    """The audit page's filters as the query string carries them (empty: not filtered)."""

    action: str = ""
    actor: str = ""
    target: str = ""
    outcome: str = ""
    since: str = ""
    until: str = ""

    def query(self, **cursor: int) -> str:
        """This filter with a paging cursor, as a link's query string."""
        fields = {k: v for k, v in vars(self).items() if v}
        query = urlencode({**fields, **cursor})
        return f"/audit?{query}" if query else "/audit"

    def arguments(self) -> dict[str, Any]:
        """The filter as :func:`~api.services.trail.read_trail`'s keyword arguments.

        The dates are whole UTC days, ``until`` included.

        :raises InvalidInputError: an unknown outcome or a malformed date.
        """
        if self.outcome and self.outcome not in OUTCOMES:
            raise InvalidInputError("unknown outcome")
        until = _day(self.until)
        return {
            "action": self.action or None,
            "actor": self.actor or None,
            "target": self.target or None,
            "outcome": self.outcome or None,
            "since": _day(self.since),
            "until": until + dt.timedelta(days=1) if until else None,
        }


def _day(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError("a date is written YYYY-MM-DD") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


@dataclass(frozen=True)
class EventRow:
    """An event as the table shows it."""

    event: AuditEventInfo
    record_code: str | None  # the target's archive code when it names a record
    detail: str  # compact, cut at DETAIL_CHARS
    detail_full: str


def _compact(detail: Mapping[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, str):
            return v
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)

    return " ".join(f"{k}={value(v)}" for k, v in sorted(detail.items()))


def _row(event: AuditEventInfo) -> EventRow:
    target = event.target or ""
    code = (
        target.removeprefix(RECORD_TARGET_PREFIX)
        if target.startswith(RECORD_TARGET_PREFIX)
        else None
    )
    full = _compact(event.detail)
    short = full if len(full) <= DETAIL_CHARS else full[: DETAIL_CHARS - 1] + "…"
    return EventRow(event, code or None, short, full)


_Text = Annotated[str, Query(max_length=128)]


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    rt: RuntimeDep,
    user: PageUser,
    action: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=64)] = "",
    target: _Text = "",
    outcome: Annotated[str, Query(max_length=16)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """Newest events first, :data:`PAGE_SIZE` to a page; ``before`` pages back towards the
    start of the chain, ``after`` forward towards its head."""
    filters = AuditFilters(
        action.strip(), actor.strip(), target.strip(), outcome, since.strip(), until.strip()
    )
    args = filters.arguments()
    if after is not None:
        events = read_trail(rt, user, after_id=after, limit=PAGE_SIZE, **args)
        events.reverse()
    else:
        events = read_trail(rt, user, before_id=before, newest_first=True, limit=PAGE_SIZE, **args)
    newer = older = None
    if events:
        # One event beyond each end tells whether a link that way leads anywhere.
        if read_trail(rt, user, after_id=events[0].id, limit=1, **args):
            newer = filters.query(after=events[0].id)
        if read_trail(rt, user, before_id=events[-1].id, newest_first=True, limit=1, **args):
            older = filters.query(before=events[-1].id)
    return render(
        request,
        "audit.html",
        {
            "rows": [_row(e) for e in events],
            "filters": filters,
            "outcomes": OUTCOMES,
            "actions": sorted(a.value for a in Action),
            "newer": newer,
            "older": older,
            "paged": before is not None or after is not None,
            "can_verify": is_allowed(user.role, Action.audit_verify),
        },
        user=user,
    )


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, rt: RuntimeDep, user: PageUser) -> Response:
    """Every user with role and state; the admin also gets the forms that change them."""
    people: list[UserInfo] = accounts.users(rt, user)
    return render(
        request,
        "users.html",
        {
            "people": people,
            "roles": list(Role),
            "can_manage": is_allowed(user.role, Action.user_manage),
        },
        user=user,
    )
