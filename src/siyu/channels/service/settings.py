"""The merchant's WeChat official-account and WeCom callback settings, kept in the merchant's
settings. Secrets (AppSecret, tokens, EncodingAESKeys) are written but never shown back."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from typing import Any

from sqlalchemy.orm import Session

from siyu.core.auth import Principal
from siyu.core.errors import ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.merchants import service as merchants

OA_APPID = "wechat_oa_appid"
OA_SECRET = "wechat_oa_secret"
OA_TOKEN = "wechat_oa_token"
OA_AES_KEY = "wechat_oa_aes_key"
WECOM_CORP_ID = "wecom_corp_id"
WECOM_TOKEN = "wecom_token"
WECOM_AES_KEY = "wecom_aes_key"

PLAIN_KEYS = (OA_APPID, WECOM_CORP_ID)
SECRET_KEYS = (OA_SECRET, OA_TOKEN, OA_AES_KEY, WECOM_TOKEN, WECOM_AES_KEY)

APPID_RE = re.compile(r"^[A-Za-z0-9_]{1,40}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# WeChat: the callback token is 3–32 letters and digits; EncodingAESKey is 43 letters and digits.
TOKEN_RE = re.compile(r"^[A-Za-z0-9]{3,32}$")
AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")


@dataclasses.dataclass(frozen=True)
class OaConfig:
    appid: str
    secret: str
    token: str
    aes_key: str  # "" when the account runs in plain mode

    @property
    def callback_ready(self) -> bool:
        return bool(self.token)


@dataclasses.dataclass(frozen=True)
class WecomConfig:
    corp_id: str
    token: str
    aes_key: str

    @property
    def callback_ready(self) -> bool:
        return bool(self.corp_id and self.token and self.aes_key)


def _raw(session: Session, merchant_id: int) -> dict[str, Any]:
    return merchants.get_merchant(session, merchant_id).settings or {}


def oa_config(session: Session, *, merchant_id: int) -> OaConfig:
    raw = _raw(session, merchant_id)
    return OaConfig(appid=str(raw.get(OA_APPID) or ""), secret=str(raw.get(OA_SECRET) or ""),
                    token=str(raw.get(OA_TOKEN) or ""), aes_key=str(raw.get(OA_AES_KEY) or ""))


def wecom_config(session: Session, *, merchant_id: int) -> WecomConfig:
    raw = _raw(session, merchant_id)
    return WecomConfig(corp_id=str(raw.get(WECOM_CORP_ID) or ""), token=str(raw.get(WECOM_TOKEN) or ""),
                       aes_key=str(raw.get(WECOM_AES_KEY) or ""))


def public_view(session: Session, *, merchant_id: int) -> dict[str, Any]:
    """What the console shows: the app ids, and for each secret only whether it is set."""
    raw = _raw(session, merchant_id)
    view: dict[str, Any] = {key: str(raw.get(key) or "") for key in PLAIN_KEYS}
    view.update({f"{key}_set": bool(raw.get(key)) for key in SECRET_KEYS})
    return view


def aes_key_valid(value: str) -> bool:
    if not AES_KEY_RE.match(value):
        return False
    try:
        return len(base64.b64decode(value + "=", validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def update(session: Session, *, actor: Principal, values: dict[str, str], clear: tuple[str, ...] = ()) -> dict[str, Any]:
    """Save the channel settings. Plain keys given are replaced (blank clears them); a blank secret keeps
    the one set, a secret named in `clear` is removed. Every field is checked before anything is
    written: a ValidationFailed names each bad field."""
    actor.require("merchant.manage")
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    for key in PLAIN_KEYS:
        if key not in values:
            continue
        value = (values.get(key) or "").strip()
        if value and not APPID_RE.match(value):
            errors[key] = _("Use up to 40 letters, digits and underscores.")
        changes[key] = value
    checks = {OA_SECRET: (SECRET_RE.match, "Use up to 64 letters, digits and underscores."),
              OA_TOKEN: (TOKEN_RE.match, "Use 3 to 32 letters and digits."),
              WECOM_TOKEN: (TOKEN_RE.match, "Use 3 to 32 letters and digits."),
              OA_AES_KEY: (aes_key_valid, "An EncodingAESKey is 43 letters and digits."),
              WECOM_AES_KEY: (aes_key_valid, "An EncodingAESKey is 43 letters and digits.")}
    for key in SECRET_KEYS:
        value = (values.get(key) or "").strip()
        check, message = checks[key]
        if value:
            if not check(value):
                errors[key] = _(message)
            changes[key] = value
        elif key in clear:
            changes[key] = ""
    if errors:
        raise ValidationFailed(details={"fields": errors})
    merchants.update_merchant(session, actor=actor, settings=changes)
    return public_view(session, merchant_id=actor.merchant_id)
