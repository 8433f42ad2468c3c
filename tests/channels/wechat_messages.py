"""Builds WeChat and WeCom callbacks as their servers do, independently of the code under test:
SHA-1 signatures over the sorted parts, and AES-256-CBC encryption of random(16) + length(4, big
endian) + message + receive id, PKCS#7-padded to 32 bytes, with the key's first 16 bytes as IV."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import struct
import time
from urllib.parse import urlencode

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def new_aes_key() -> str:
    """A random EncodingAESKey: 43 base64 characters (32 bytes without the trailing '=')."""
    while True:
        key = base64.b64encode(os.urandom(32)).decode()[:43]
        if key.isalnum():
            return key


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def encrypt(aes_key: str, message: str, receive_id: str) -> str:
    key = base64.b64decode(aes_key + "=")
    data = message.encode()
    raw = os.urandom(16) + struct.pack(">I", len(data)) + data + receive_id.encode()
    pad = 32 - len(raw) % 32
    raw += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode()


def oa_event(*, to: str = "gh_test", openid: str, event: str, key: str | None = None, create_time: int | None = None,
             ticket: str | None = None) -> str:
    parts = [f"<ToUserName><![CDATA[{to}]]></ToUserName>", f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
             f"<CreateTime>{create_time or int(time.time())}</CreateTime>", "<MsgType><![CDATA[event]]></MsgType>",
             f"<Event><![CDATA[{event}]]></Event>"]
    if key is not None:
        parts.append(f"<EventKey><![CDATA[{key}]]></EventKey>")
    if ticket:
        parts.append(f"<Ticket><![CDATA[{ticket}]]></Ticket>")
    return "<xml>" + "".join(parts) + "</xml>"


def oa_text(*, openid: str, content: str, msg_id: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def wecom_event(*, corp_id: str, change: str, userid: str, external: str, state: str = "",
                create_time: int | None = None) -> str:
    state_xml = f"<State><![CDATA[{state}]]></State>" if state else ""
    return (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>"
            f"<UserID><![CDATA[{userid}]]></UserID><ExternalUserID><![CDATA[{external}]]></ExternalUserID>"
            f"{state_xml}<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>")


def plain_request(token: str, message: str, *, timestamp: int | None = None, openid: str = "") -> tuple[str, bytes]:
    """(query string, body) of a plain-mode official-account POST."""
    ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
    query = {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid}
    return urlencode(query), message.encode()


def safe_request(token: str, aes_key: str, appid: str, message: str, *, timestamp: int | None = None,
                 openid: str = "") -> tuple[str, bytes]:
    """(query string, body) of a safe-mode official-account POST (encrypt_type=aes)."""
    ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
    encrypted = encrypt(aes_key, message, appid)
    query = {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid,
             "encrypt_type": "aes", "msg_signature": sign(token, ts, nonce, encrypted)}
    body = f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return urlencode(query), body.encode()


def wecom_request(token: str, aes_key: str, corp_id: str, message: str, *,
                  timestamp: int | None = None) -> tuple[str, bytes]:
    ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
    encrypted = encrypt(aes_key, message, corp_id)
    query = {"msg_signature": sign(token, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    body = (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><AgentID><![CDATA[1000005]]></AgentID>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
    return urlencode(query), body.encode()
