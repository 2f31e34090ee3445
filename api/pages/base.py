"""What every page needs: the signed-in user from the session cookie, the language, and
rendering a template with both, the CSRF token and the navigation the user's role allows.

Pages read through ``api.services`` exactly as the JSON API does, so the same policy decides
what a person sees in a page and what a script gets; the pages' own scripts change things
through the JSON API (``/api/v1``) with the session cookie and the CSRF token.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, Final
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import RuntimeDep
from api.pages.i18n import DEFAULT_LANGUAGE, LANGUAGES, translations
from api.pages.labels import N_, label
from api.services.auth import user_for_token
from api.session import CSRF_FIELD, SESSION_COOKIE, check_csrf, csrf_token, remember_csrf
from catalog import UserInfo
from catalog.policy import Action, is_allowed
from dangan import __version__
from dangan.errors import NotAuthenticatedError

__all__ = [
    "LANG_COOKIE",
    "LoginRequiredError",
    "PageUser",
    "check_form_csrf",
    "language",
    "redirect",
    "render",
    "session_user",
]

LANG_COOKIE: Final = "dangan_lang"
_TEMPLATES: Final = jinja2.PackageLoader("api", "templates")

# The navigation: (link id, path, message, the action that shows it).
_NAV: Final = (
    ("nav-dashboard", "/", N_("Dashboard"), Action.stats_read),
    ("nav-upload", "/upload", N_("Upload"), Action.record_create),
    ("nav-queue", "/queue", N_("Intake queue"), Action.record_read_metadata),
    ("nav-records", "/records", N_("Records"), Action.record_read_metadata),
    # The review queue: reviewers' 复核, and a clerk's own gates and records sent back.
    ("nav-reviews", "/reviews", N_("Review queue"), Action.record_update_draft),
    ("nav-search", "/search", N_("Search"), Action.search),
    ("nav-changes", "/change-requests", N_("Change requests"), Action.record_request_key_change),
    ("nav-audit", "/audit", N_("Audit trail"), Action.audit_read),
    ("nav-disposition", "/disposition", N_("Disposition"), Action.disposition_approve),
    ("nav-checks", "/checks", N_("Four-property check"), Action.check_run),
    ("nav-sampling", "/sampling", N_("Sampling audit"), Action.sampling_run),
    ("nav-users", "/users", N_("Users"), Action.user_list),
    ("nav-breakglass", "/breakglass", N_("Break-glass"), Action.breakglass_grant),
    ("nav-incidents", "/incidents", N_("Incidents"), Action.incident_report),
)


class LoginRequiredError(NotAuthenticatedError):
    """A page asked for without a session: the page answers with a way to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


def language(request: Request) -> str:
    """The page language: the visitor's choice (cookie), else Chinese."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


@cache
def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_TEMPLATES,
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["version"] = __version__
    env.globals["label"] = label
    return env


def gettext_for(request: Request) -> Any:
    """The ``_`` of this request's language, for messages made in Python."""
    return translations(language(request)).gettext


def _page_user(request: Request, rt: RuntimeDep) -> UserInfo:
    token = request.cookies.get(SESSION_COOKIE)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not token:
        raise LoginRequiredError(path)
    try:
        return user_for_token(rt, token, kind="session")
    except NotAuthenticatedError:
        raise LoginRequiredError(path) from None


PageUser = Annotated[UserInfo, Depends(_page_user)]


def session_user(request: Request) -> UserInfo | None:
    """The signed-in user of a request that may have none (an error page's navigation)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return user_for_token(request.app.state.runtime, token, kind="session")
    except Exception:  # noqa: BLE001 - an error page must render whatever the session is
        return None


async def check_form_csrf(request: Request) -> Mapping[str, Any]:
    """The posted form, once its CSRF token is this browser's.

    :raises PermissionDeniedError: the token is missing or wrong.
    """
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    check_csrf(request, sent if isinstance(sent, str) else None)
    return form


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    user: UserInfo | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A page: ``template`` with ``context``, the user, the language and the CSRF token."""
    lang = language(request)
    nav = (
        [
            (link_id, path, label)
            for link_id, path, label, action in _NAV
            if is_allowed(user.role, action)
        ]
        if user is not None
        else []
    )
    html = (
        _environment(lang)
        .get_template(template)
        .render(
            {
                "request": request,
                "user": user,
                "lang": lang,
                "languages": LANGUAGES,
                "csrf_token": csrf_token(request),
                "nav": nav,
                "path": request.url.path,
                **(context or {}),
            }
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    remember_csrf(request, response)
    return response


def redirect(path: str) -> RedirectResponse:
    """See Other: after a form is posted, or to the sign-in page."""
    return RedirectResponse(path, status_code=303)


def login_redirect(next_path: str) -> RedirectResponse:
    return redirect("/login?next=" + quote(next_path, safe="/"))
