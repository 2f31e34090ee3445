"""Signing in and out of the pages, and choosing their language."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import ClientAddress, RuntimeDep, ThrottleDep
from api.pages.base import LANG_COOKIE, check_form_csrf, gettext_for, redirect, render
from api.pages.i18n import LANGUAGES
from api.services import auth
from api.session import clear_session, set_session
from dangan.errors import NotAuthenticatedError, TooManyRequestsError

router = APIRouter(include_in_schema=False)

_LANG_MAX_AGE = 365 * 24 * 3600


def _safe_next(value: object) -> str:
    # Only a path on this server: never another site (open redirect), never "//host".
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request, rt: RuntimeDep, throttle: ThrottleDep, address: ClientAddress
) -> Response:
    form = await check_form_csrf(request)
    name, password = form.get("username"), form.get("password")
    next_path = _safe_next(form.get("next"))
    _ = gettext_for(request)
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        error, status = _("Enter your user name and password."), 422
    else:
        try:
            token = auth.sign_in(rt, throttle, name=name, password=password, address=address)
        except TooManyRequestsError as exc:
            error, status = _("Too many failed sign-ins; try again in a few minutes."), 429
            response = render(
                request, "login.html", {"next": next_path, "error": error}, status_code=status
            )
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except NotAuthenticatedError:
            error, status = _("Wrong user name or password."), 401
        else:
            signed_in = redirect(next_path)
            set_session(request, signed_in, token)
            return signed_in
    return render(request, "login.html", {"next": next_path, "error": error}, status_code=status)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await check_form_csrf(request)
    response = redirect("/login")
    clear_session(request, response)
    return response


@router.post("/lang")
async def choose_language(request: Request) -> Response:
    form = await check_form_csrf(request)
    lang = form.get("lang")
    response = redirect(_safe_next(form.get("next")))
    if isinstance(lang, str) and lang in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=_LANG_MAX_AGE, path="/", httponly=True, samesite="strict"
        )
    return response
