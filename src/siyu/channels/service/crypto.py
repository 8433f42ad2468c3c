"""WeChat's callback security: SHA-1 signatures over the sorted token, timestamp, nonce (and, in
safe mode, the encrypted message), AES-256-CBC message decryption (wechatpy's implementation of
WeChat's scheme: random(16) + length(4) + message + app id), and a guarded XML parse."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import xmltodict
from wechatpy.crypto import PrpCrypto as OaPrpCrypto
from wechatpy.enterprise.crypto import PrpCrypto as WecomPrpCrypto

MAX_FIELD = 2000


class CryptoError(Exception):
    """The message cannot be decrypted, or was encrypted for another app."""


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted and concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check(signature: str | None, *parts: str) -> bool:
    """Constant-time comparison with the expected signature."""
    if not signature or len(signature) > 100:
        return False
    return hmac.compare_digest(signature.encode(), sign(*parts).encode())


def _key(aes_key: str) -> bytes:
    key = base64.b64decode(aes_key + "=")
    if len(key) != 32:
        raise CryptoError("bad EncodingAESKey")
    return key


def decrypt(aes_key: str, encrypted: str, receive_id: str, *, wecom: bool = False) -> str:
    """The plaintext of an encrypted message (or WeCom's echostr), checking that it was meant for
    `receive_id` (the official account's appid or the WeCom corp id)."""
    if not encrypted or len(encrypted) > 1_000_000:
        raise CryptoError("empty or oversized message")
    crypto = (WecomPrpCrypto if wecom else OaPrpCrypto)(_key(aes_key))
    try:
        return crypto.decrypt(encrypted, receive_id)
    except Exception as exc:  # a tampered text fails anywhere in base64, AES, padding, length or utf-8
        raise CryptoError(type(exc).__name__) from exc


def parse_xml(text: str | bytes) -> dict[str, str]:
    """The children of a WeChat `<xml>` document as {name: text}. Entities are refused by the parser;
    nested elements are dropped. Raises ValueError when it is not such a document."""
    try:
        doc: Any = xmltodict.parse(text, disable_entities=True)
    except Exception as exc:  # expat errors, entity refusals, bad encodings
        raise ValueError("not XML") from exc
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise ValueError("no <xml> root")
    fields: dict[str, str] = {}
    for name, value in root.items():
        if isinstance(value, str):
            fields[str(name)] = value[:MAX_FIELD]
        elif value is None:
            fields[str(name)] = ""
    return fields
