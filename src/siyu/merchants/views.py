"""Console pages of the merchants domain: sign in and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from siyu.config import get_settings
from siyu.core.errors import Unauthorized
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.core.web import DbSession, PostedForm, form_str
from siyu.merchants import service
from siyu.merchants.deps import SESSION_COOKIE, ConsoleForm, ConsoleStaff

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    # Only our own console paths: never an open redirect.
    if target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console/"


@router.get("/console/login")
def login_page(request: Request, next: str = "/console/") -> Response:
    return render(request, "merchants/login.html", {"next": _safe_next(next[:500])})


@router.post("/console/login")
def login(request: Request, session: DbSession, form: PostedForm) -> Response:
    username = form_str(form, "username", max_length=60)
    password = form.get("password") if isinstance(form.get("password"), str) else ""
    target = _safe_next(form_str(form, "next", "/console/", max_length=500))
    try:
        staff = service.authenticate(session, username=username, password=str(password)[:200])
    except Unauthorized:
        return render(request, "merchants/login.html",
                      {"next": target, "username": username, "error": _("Wrong username or password.")}, status_code=401)
    raw, _row = service.issue_token(session, staff, kind="session")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="lax", secure=get_settings().secure_cookies,
                        max_age=get_settings().session_days * 86400)
    return response


@router.post("/console/logout")
def logout(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    service.revoke_token(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
