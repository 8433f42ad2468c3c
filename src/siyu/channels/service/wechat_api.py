"""The official account's server API over httpx against the configured WeChat API base URL (tests
point it at a local fake): the access token, cached in the database for every app process, and
permanent parametric QR codes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.channels.models import ApiAccessToken
from siyu.channels.service.settings import OaConfig
from siyu.config import get_settings
from siyu.core import clock
from siyu.core.errors import AppError

TIMEOUT_SECONDS = 10.0
USER_INFO_TIMEOUT_SECONDS = 3.0
# Refresh a little before WeChat's expiry, so a token never dies in flight.
EXPIRY_MARGIN = dt.timedelta(minutes=5)
# WeChat's "this access token is invalid or expired" codes: fetch a new one and retry once.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})


def _unavailable() -> AppError:
    return AppError("WeChat cannot be reached right now; try again in a moment.", code="wechat_unavailable",
                    status_code=503)


def _bad_answer() -> AppError:
    return AppError("WeChat answered with something we do not understand.", code="wechat_bad_response",
                    status_code=502)


def _call(method: str, path: str, *, params: dict[str, str], json: dict[str, Any] | None = None,
          timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    base = get_settings().wechat_api_base.rstrip("/")
    try:
        response = httpx.request(method, f"{base}{path}", params=params, json=json, timeout=timeout)
    except httpx.HTTPError as exc:
        raise _unavailable() from exc
    if response.status_code >= 500:
        raise _unavailable()
    try:
        data = response.json()
    except ValueError as exc:
        raise _bad_answer() from exc
    if not isinstance(data, dict):
        raise _bad_answer()
    return data


def _api_error(data: dict[str, Any]) -> AppError:
    return AppError("WeChat refused the request.", code="wechat_api_error", status_code=502,
                    details={"errcode": data.get("errcode"), "errmsg": str(data.get("errmsg", ""))[:200]})


def _app_key(config: OaConfig) -> str:
    return f"oa:{config.appid}"[:120]


def access_token(session: Session, *, merchant_id: int, config: OaConfig, force: bool = False) -> str:
    """The official account's access token: the cached one while it is valid, else a new one from
    /cgi-bin/token, stored for every process. `force` skips the cache (WeChat said it is invalid)."""
    if not config.appid or not config.secret:
        raise AppError("Set the official account's AppID and AppSecret first.", code="oa_not_configured",
                       status_code=409)
    now = clock.now()
    key = _app_key(config)
    row = session.scalars(select(ApiAccessToken).where(ApiAccessToken.merchant_id == merchant_id,
                                                       ApiAccessToken.app_key == key)).first()
    if row is not None and not force and row.expires_at > now:
        return row.token
    data = _call("GET", "/cgi-bin/token",
                 params={"grant_type": "client_credential", "appid": config.appid, "secret": config.secret})
    if data.get("errcode"):
        raise _api_error(data)
    token, expires_in = data.get("access_token"), data.get("expires_in")
    if not isinstance(token, str) or not 0 < len(token) <= 600 or not isinstance(expires_in, int) or expires_in <= 0:
        raise _bad_answer()
    expires_at = now + max(dt.timedelta(seconds=expires_in) - EXPIRY_MARGIN, dt.timedelta(seconds=30))
    if row is not None:
        session.execute(update(ApiAccessToken).where(ApiAccessToken.id == row.id)
                        .values(token=token, expires_at=expires_at, fetched_at=now))
        session.expire(row)
        return token
    try:
        with session.begin_nested():
            session.add(ApiAccessToken(merchant_id=merchant_id, app_key=key, token=token, expires_at=expires_at,
                                       fetched_at=now))
    except IntegrityError:
        # Another process stored one meanwhile: ours is as good; keep the newest.
        session.execute(update(ApiAccessToken).where(ApiAccessToken.merchant_id == merchant_id,
                                                     ApiAccessToken.app_key == key)
                        .values(token=token, expires_at=expires_at, fetched_at=now))
    return token


def create_permanent_qrcode(session: Session, *, merchant_id: int, config: OaConfig, scene: str) -> dict[str, str]:
    """A permanent string-scene QR code (QR_LIMIT_STR_SCENE): {ticket, url}. `url` is the content of
    the code, so it can be drawn locally."""
    body = {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}
    for attempt in (0, 1):
        token = access_token(session, merchant_id=merchant_id, config=config, force=attempt == 1)
        data = _call("POST", "/cgi-bin/qrcode/create", params={"access_token": token}, json=body)
        if data.get("errcode") in TOKEN_ERRORS and attempt == 0:
            continue
        if data.get("errcode"):
            raise _api_error(data)
        ticket, url = data.get("ticket"), data.get("url")
        if not isinstance(ticket, str) or not 0 < len(ticket) <= 200 or not isinstance(url, str) \
                or not 0 < len(url) <= 300:
            raise _bad_answer()
        return {"ticket": ticket, "url": url}
    raise _bad_answer()  # pragma: no cover (the loop always returns or raises)


def user_info(session: Session, *, merchant_id: int, config: OaConfig, openid: str) -> dict[str, Any]:
    """A follower's basic information (/cgi-bin/user/info): {subscribe, openid, unionid?, …}. A short
    timeout: with inline events this runs before the callback's answer, and WeChat waits 5 seconds
    (a failure is retried by the events tick)."""
    for attempt in (0, 1):
        token = access_token(session, merchant_id=merchant_id, config=config, force=attempt == 1)
        data = _call("GET", "/cgi-bin/user/info", params={"access_token": token, "openid": openid, "lang": "zh_CN"},
                     timeout=USER_INFO_TIMEOUT_SECONDS)
        if data.get("errcode") in TOKEN_ERRORS and attempt == 0:
            continue
        if data.get("errcode"):
            raise _api_error(data)
        return data
    raise _bad_answer()  # pragma: no cover
