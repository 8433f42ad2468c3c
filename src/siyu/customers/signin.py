"""Customer sign-in: session tokens (only digests stored), the demo login and WeChat
mini-program login. The customer is found or created through the customers service."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.core import clock
from siyu.core.auth import Principal, new_token, token_digest
from siyu.core.auth_cache import TTLCache, engine_key, forget_now_and_after_commit
from siyu.core.errors import AppError, NotFound, Unauthorized
from siyu.core.events import emit
from siyu.customers import events, wechat
from siyu.customers.models import Customer, CustomerToken
from siyu.customers.service import (
    bind_identity,
    find_by_identity,
    find_or_create_by_identity,
    resolve_merged,
)
from siyu.merchants import service as merchants


def issue_customer_token(session: Session, customer: Customer) -> str:
    raw = new_token()
    session.add(CustomerToken(merchant_id=customer.merchant_id, customer_id=customer.id, token_digest=token_digest(raw),
                              expires_at=clock.now() + dt.timedelta(days=get_settings().token_days)))
    session.flush()
    return raw


# The customer behind a live token, per process for a few seconds: every shop request resolves its
# token, a checkout three times. Revoking a token or merging its customer drops the entry in this process
# (now and after the commit); other processes see it within the TTL (core.auth_cache).
TOKEN_CACHE_SECONDS = 10.0
_tokens = TTLCache(ttl=TOKEN_CACHE_SECONDS)


@dataclasses.dataclass(frozen=True)
class _CachedToken:
    merchant_id: int
    customer_id: int
    nickname: str
    expires_at: dt.datetime


def cached_customer_token(session: Session, raw: str, *, merchant_id: int) -> Principal | None:
    """The customer principal behind a live token of this merchant from this process's cache, without
    any I/O; None when not cached (`resolve_customer_token` then decides)."""
    if not raw or len(raw) > 200:
        return None
    cached = _tokens.get((engine_key(session), token_digest(raw)))
    if cached is not None and cached.merchant_id == merchant_id and cached.expires_at > clock.now():
        return Principal(merchant_id=merchant_id, kind="customer", subject_id=cached.customer_id,
                         name=cached.nickname)
    return None


def resolve_customer_token(session: Session, raw: str, *, merchant_id: int) -> Principal:
    """The customer principal behind a token of this merchant, else Unauthorized."""
    if not raw or len(raw) > 200:
        raise Unauthorized()
    principal = cached_customer_token(session, raw, merchant_id=merchant_id)
    if principal is not None:
        return principal
    key = (engine_key(session), token_digest(raw))
    # One round trip for the token and its customer.
    row = session.execute(
        select(CustomerToken.merchant_id, CustomerToken.revoked_at, CustomerToken.expires_at,
               Customer.id, Customer.nickname, Customer.merged_into_id)
        .join(Customer, Customer.id == CustomerToken.customer_id)
        .where(CustomerToken.token_digest == key[1])
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= clock.now() or row.merchant_id != merchant_id:
        raise Unauthorized()
    if row.merged_into_id is None:
        _tokens.put(key, _CachedToken(merchant_id=merchant_id, customer_id=row.id, nickname=row.nickname[:60],
                                      expires_at=row.expires_at))
        return Principal(merchant_id=merchant_id, kind="customer", subject_id=row.id, name=row.nickname[:60])
    customer = resolve_merged(session, session.get(Customer, row.id))
    return Principal(merchant_id=merchant_id, kind="customer", subject_id=customer.id, name=customer.nickname[:60])


def revoke_customer_token(session: Session, raw: str) -> None:
    digest = token_digest(raw)
    key = (engine_key(session), digest)
    forget_now_and_after_commit(session, lambda: _tokens.pop(key))
    session.execute(update(CustomerToken).where(CustomerToken.token_digest == digest,
                                                CustomerToken.revoked_at.is_(None)).values(revoked_at=clock.now()))


@sa_event.listens_for(Customer, "after_update")
def _forget_changed_customer(_mapper: Any, _connection: Any, target: Customer) -> None:
    """A customer merged into another (their tokens now act for the target) or renamed: their cached
    tokens are dropped."""
    state = sa_inspect(target)
    if not (state.attrs.merged_into_id.history.has_changes() or state.attrs.nickname.history.has_changes()):
        return
    customer_id = target.id
    session = state.session

    def forget() -> None:
        _tokens.pop_where(lambda _key, value: value.customer_id == customer_id)

    if session is None:
        forget()
    else:
        forget_now_and_after_commit(session, forget)


def signed_in(session: Session, customer: Customer, *, visitor_id: str | None) -> str:
    """A customer signed in (from the browser whose anonymous visitor cookie is `visitor_id`): a session
    token, and the `customer.signed_in` event that lets attribution stitch that visitor's touches."""
    emit(session, events.CUSTOMER_SIGNED_IN,
         events.CustomerSignedIn(customer_id=customer.id, visitor_id=(visitor_id or None) and visitor_id[:40]),
         merchant_id=customer.merchant_id)
    return issue_customer_token(session, customer)


def dev_login(session: Session, *, merchant_id: int, openid: str, nickname: str | None = None,
              visitor_id: str | None = None) -> tuple[Customer, str]:
    """Sign in by openid without WeChat (demo and tests only, when SIYU_DEV_LOGIN=1)."""
    if not get_settings().dev_login:
        raise NotFound("Demo login is disabled.", code="dev_login_disabled")
    customer, _created = find_or_create_by_identity(session, merchant_id=merchant_id, kind="openid", value=openid,
                                                    nickname=nickname)
    return customer, signed_in(session, customer, visitor_id=visitor_id)


def wechat_login(session: Session, *, merchant_id: int, code: str, visitor_id: str | None = None) -> tuple[Customer, str]:
    """Mini-program sign-in: code2session with the merchant's app id and secret, then the customer
    holding the openid (or the unionid), created on first sign-in; both identities are bound."""
    settings = merchants.get_merchant(session, merchant_id).settings or {}
    appid, secret = settings.get("wechat_miniprogram_appid"), settings.get("wechat_miniprogram_secret")
    if not appid or not secret:
        raise AppError("WeChat login is not configured for this shop.", code="wechat_not_configured", status_code=409)
    answer = wechat.code2session(appid=str(appid), secret=str(secret), code=code)
    openid, unionid = answer["openid"], answer["unionid"]
    customer = find_by_identity(session, merchant_id=merchant_id, kind="openid", value=openid)
    if customer is None and unionid:
        customer = find_by_identity(session, merchant_id=merchant_id, kind="unionid", value=unionid)
    if customer is None:
        customer, _created = find_or_create_by_identity(session, merchant_id=merchant_id, kind="openid", value=openid)
    else:
        customer = bind_identity(session, merchant_id=merchant_id, customer_id=customer.id, kind="openid", value=openid)
    if unionid:
        customer = bind_identity(session, merchant_id=merchant_id, customer_id=customer.id, kind="unionid", value=unionid)
    return customer, signed_in(session, customer, visitor_id=visitor_id)
