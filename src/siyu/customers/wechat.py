"""WeChat mini-program login (code2session), over httpx against the configured API base URL so
tests can point it at a local fake server."""

from __future__ import annotations

from typing import Any

import httpx

from siyu.config import get_settings
from siyu.core.errors import AppError

TIMEOUT_SECONDS = 10.0


def code2session(*, appid: str, secret: str, code: str) -> dict[str, Any]:
    """Exchange a wx.login code for {openid, unionid?, session_key}. WeChat errors answer 400
    `wechat_login_failed` with the errcode; an unreachable WeChat answers 503."""
    base = get_settings().wechat_api_base.rstrip("/")
    params = {"appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"}
    try:
        response = httpx.get(f"{base}/sns/jscode2session", params=params, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise AppError("WeChat cannot be reached right now; try again in a moment.", code="wechat_unavailable",
                       status_code=503) from exc
    if response.status_code >= 500:
        raise AppError("WeChat cannot be reached right now; try again in a moment.", code="wechat_unavailable",
                       status_code=503)
    try:
        data = response.json()
    except ValueError as exc:
        raise AppError("WeChat answered with something we do not understand.", code="wechat_bad_response",
                       status_code=502) from exc
    if not isinstance(data, dict):
        raise AppError("WeChat answered with something we do not understand.", code="wechat_bad_response",
                       status_code=502)
    errcode = data.get("errcode") or 0
    if errcode:
        raise AppError("WeChat login failed.", code="wechat_login_failed", status_code=400,
                       details={"errcode": errcode, "errmsg": str(data.get("errmsg", ""))[:200]})
    openid = data.get("openid")
    unionid = data.get("unionid")
    if not isinstance(openid, str) or not 0 < len(openid) <= 128:
        raise AppError("WeChat answered with something we do not understand.", code="wechat_bad_response",
                       status_code=502)
    if not isinstance(unionid, str) or not 0 < len(unionid) <= 128:
        unionid = None
    return {"openid": openid, "unionid": unionid}
