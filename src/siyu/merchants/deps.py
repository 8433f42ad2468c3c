"""FastAPI dependencies for staff: who is asking (bearer token or console session), CSRF, and the
shop's merchant from the URL. Every domain's api.py and views.py uses these."""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, make_transient_to_detached, object_session
from sqlalchemy.orm.util import identity_key
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from siyu.core.auth import Principal
from siyu.core.auth_cache import TTLCache, engine_key, forget_now_and_after_commit
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


# The shop's merchant by slug, per process for a few seconds: every shop request needs it. Any ORM
# insert, update or delete of a merchant drops its entry in this process (now and after the commit);
# other processes see a change within the TTL (core.auth_cache).
MERCHANT_CACHE_SECONDS = 5.0
_merchants = TTLCache(ttl=MERCHANT_CACHE_SECONDS)


def cached_merchant(session: Session, slug: str) -> Merchant | None:
    """The merchant of `slug` from this process's cache, joined to `session` as if loaded (its settings
    its own copy), without any I/O; None when not cached."""
    if not isinstance(slug, str) or len(slug) > 40:
        return None
    cached = _merchants.get((engine_key(session), slug))
    if cached is None:
        return None
    merchant_id, name, settings_json, created_at = cached
    loaded = session.identity_map.get(identity_key(Merchant, merchant_id))
    if loaded is not None:
        return loaded
    copy = Merchant(id=merchant_id, slug=slug, name=name, settings=json.loads(settings_json), created_at=created_at)
    make_transient_to_detached(copy)
    session.add(copy)  # detached and not in the identity map: it joins as persistent, as if loaded
    return copy


def merchant_by_slug(session: Session, slug: str) -> Merchant:
    """The merchant of `slug` in `session` (NotFound as `get_merchant_by_slug`). From the cache it costs
    no query (`cached_merchant`)."""
    merchant = cached_merchant(session, slug)
    if merchant is not None:
        return merchant
    if not isinstance(slug, str) or len(slug) > 40:
        return service.get_merchant_by_slug(session, slug)
    key = (engine_key(session), slug)
    merchant = service.get_merchant_by_slug(session, slug)
    try:
        settings_json = json.dumps(merchant.settings or {})
    except (TypeError, ValueError):  # not plain JSON: not cached
        return merchant
    _merchants.put(key, (merchant.id, merchant.name, settings_json, merchant.created_at))
    return merchant


def _forget_merchant(_mapper: Any, connection: Any, target: Merchant) -> None:
    merchant_id, slug = target.id, target.slug

    def forget() -> None:
        _merchants.pop_where(lambda key, value: key[1] == slug or value[0] == merchant_id)

    session = object_session(target)
    if session is None:
        forget()
    else:
        forget_now_and_after_commit(session, forget)


for _event in ("after_insert", "after_update", "after_delete"):
    sa_event.listen(Merchant, _event, _forget_merchant)


async def shop_merchant(request: Request, session: DbSession, m: Annotated[str, Path(max_length=40)]) -> Merchant:
    # In the event loop when cached (no I/O), else in a worker thread.
    merchant = cached_merchant(session, m) or await run_in_threadpool(merchant_by_slug, session, m)
    request.state.merchant = merchant
    return merchant


Staff = Annotated[Principal, Depends(require_staff)]
ConsoleStaff = Annotated[Principal, Depends(require_console)]
ConsoleForm = Annotated[FormData, Depends(console_form)]
ShopMerchant = Annotated[Merchant, Depends(shop_merchant)]
