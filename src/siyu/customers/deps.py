"""FastAPI dependencies for customers of the shop: a bearer token (mini-program) or the H5 cookie
`siyu_c_{slug}`, which must belong to the merchant in the URL."""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from siyu.config import get_settings
from siyu.core.auth import Principal
from siyu.core.errors import AppError, PermissionDenied, Unauthorized
from siyu.core.templating import templates
from siyu.core.web import DbSession
from siyu.customers import signin
from siyu.merchants.deps import ShopMerchant
from siyu.merchants.models import Merchant


def cookie_name(slug: str) -> str:
    return f"siyu_c_{slug}"


# The anonymous visitor cookie, set by share links and the shop's beacon (attribution) and read at sign-in so
# the visitor's touches are given to the customer. A mini-program sends the same id in the header.
VISITOR_COOKIE = "siyu_vid"
VISITOR_HEADER = "x-siyu-visitor"


def visitor_id_of(request: Request) -> str | None:
    value = request.cookies.get(VISITOR_COOKIE) or request.headers.get(VISITOR_HEADER)
    return value[:40] if value else None


def csrf_for(raw_token: str) -> str:
    """The H5 form token: derived from the session token, so nothing more is stored."""
    key = get_settings().secret_key.encode()
    return hmac.new(key, b"shop-csrf:" + raw_token.encode(), hashlib.sha256).hexdigest()[:32]


def _raw_token(request: Request, merchant: Merchant) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.cookies.get(cookie_name(merchant.slug))


def _signed_in(request: Request, raw: str, principal: Principal) -> Principal:
    request.state.customer = principal
    request.state.csrf_token = csrf_for(raw)
    return principal


async def _resolve(request: Request, session: Any, merchant: Merchant) -> Principal | None:
    """The signed-in customer (None without a token; Unauthorized for a bad one): in the event loop when
    the token is cached (no I/O), else in a worker thread."""
    raw = _raw_token(request, merchant)
    if not raw:
        return None
    principal = signin.cached_customer_token(session, raw, merchant_id=merchant.id) or await run_in_threadpool(
        functools.partial(signin.resolve_customer_token, session, raw, merchant_id=merchant.id))
    return _signed_in(request, raw, principal)


def current_shop_customer(request: Request, session: Any, merchant: Merchant) -> Principal | None:
    """`optional_shop_customer` for code already in a worker thread (a page slot rendering)."""
    raw = _raw_token(request, merchant)
    if not raw:
        return None
    try:
        return _signed_in(request, raw, signin.resolve_customer_token(session, raw, merchant_id=merchant.id))
    except Unauthorized:
        return None


async def require_shop_customer(request: Request, session: DbSession, merchant: ShopMerchant) -> Principal:
    principal = await _resolve(request, session, merchant)
    if principal is None:
        raise Unauthorized()
    return principal


async def optional_shop_customer(request: Request, session: DbSession, merchant: ShopMerchant) -> Principal | None:
    try:
        return await _resolve(request, session, merchant)
    except Unauthorized:
        return None


def check_shop_csrf(request: Request, form: Any) -> None:
    """H5 forms of a signed-in customer carry the token derived from their session."""
    sent = form.get("csrf_token")
    expected = getattr(request.state, "csrf_token", "")
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied("The form has expired; reload the page.", code="csrf_failed")


class ShopLoginRequired(AppError):
    """An H5 page or form needs a signed-in customer; app.py answers with a redirect to the shop's
    login page, which comes back to `next` afterwards."""

    status_code = 401
    code = "login_required"
    message = "Please sign in."

    def __init__(self, *, slug: str, next_url: str) -> None:
        super().__init__()
        self.login_url = f"/shop/{slug}/login?" + urlencode({"next": next_url})


def _return_to(request: Request, merchant: Merchant) -> str:
    """Where to come back after signing in: the page itself, or for a form the page it was on."""
    home = f"/shop/{merchant.slug}/"
    if request.method in ("GET", "HEAD"):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = request.headers.get("referer", "")
    path = "/" + referer.split("://", 1)[1].split("/", 1)[-1] if "://" in referer else referer
    return path if path.startswith(home) else home


async def require_shop_page_customer(request: Request, session: DbSession, merchant: ShopMerchant) -> Principal:
    """H5 pages: the signed-in customer, else a redirect to the login page."""
    principal = await _resolve(request, session, merchant)
    if principal is None:
        raise ShopLoginRequired(slug=merchant.slug, next_url=_return_to(request, merchant))
    return principal


async def shop_form(request: Request, _customer: Annotated[Principal, Depends(require_shop_page_customer)]) -> Any:
    """The posted H5 form of a signed-in customer, after checking its form token."""
    form = await request.form()
    check_shop_csrf(request, form)
    return form


ShopCustomer = Annotated[Principal, Depends(require_shop_customer)]
ShopPageCustomer = Annotated[Principal, Depends(require_shop_page_customer)]
ShopForm = Annotated[Any, Depends(shop_form)]
OptionalShopCustomer = Annotated[Principal | None, Depends(optional_shop_customer)]


def shop_form_token(request: Request, merchant: Merchant) -> str:
    """The signed-in customer's H5 form token, or "" for a visitor. Lower domains' shop templates use it
    (as the Jinja global `shop_form_token`) to post to customer routes, without importing this domain."""
    raw = request.cookies.get(cookie_name(merchant.slug))
    return csrf_for(raw) if raw else ""


templates.env.globals["shop_form_token"] = shop_form_token
