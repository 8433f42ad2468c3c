"""FastAPI dependencies for staff: who is asking (bearer token or console session), CSRF, and the
shop's merchant from the URL. Every domain's api.py and views.py uses these."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.datastructures import FormData

from siyu.core.auth import Principal
from siyu.core.errors import AppError, PermissionDenied, Unauthorized
from siyu.core.web import DbSession
from siyu.merchants import service
from siyu.merchants.models import Merchant

SESSION_COOKIE = "siyu_session"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(AppError):
    """Raised on console pages without a valid session; app.py answers with a redirect to login."""

    status_code = 401
    code = "login_required"
    message = "Please sign in."


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def require_staff(request: Request, session: DbSession) -> Principal:
    """API: a bearer token, or the console session cookie (then unsafe methods need the CSRF header)."""
    raw = _bearer(request)
    if raw:
        principal, _ = service.resolve_token(session, raw)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthorized()
        principal, row = service.resolve_token(session, cookie, kind="session")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), row.csrf_token.encode()):
                raise PermissionDenied("The form has expired; reload the page.", code="csrf_failed")
        request.state.csrf_token = row.csrf_token
    request.state.principal = principal
    return principal


def require_console(request: Request, session: DbSession) -> Principal:
    """Console pages: the session cookie, else a redirect to the login page."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise LoginRequired()
    try:
        principal, row = service.resolve_token(session, cookie, kind="session")
    except Unauthorized as exc:
        raise LoginRequired() from exc
    request.state.principal = principal
    request.state.csrf_token = row.csrf_token
    return principal


async def console_form(request: Request, _principal: Annotated[Principal, Depends(require_console)]) -> FormData:
    """The posted form of a console page, after checking its CSRF token."""
    form = await request.form()
    sent = form.get("csrf_token")
    expected = getattr(request.state, "csrf_token", "")
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied("The form has expired; reload the page.", code="csrf_failed")
    return form


def shop_merchant(request: Request, session: DbSession, m: Annotated[str, Path(max_length=40)]) -> Merchant:
    merchant = service.get_merchant_by_slug(session, m)
    request.state.merchant = merchant
    return merchant


Staff = Annotated[Principal, Depends(require_staff)]
ConsoleStaff = Annotated[Principal, Depends(require_console)]
ConsoleForm = Annotated[FormData, Depends(console_form)]
ShopMerchant = Annotated[Merchant, Depends(shop_merchant)]
