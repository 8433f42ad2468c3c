"""The official account's callback (/webhooks/wechat/oa/{m}).

GET is WeChat's URL check: `signature` = SHA-1 of the sorted token, timestamp and nonce; a valid
one is answered with `echostr`. POST carries a message or an event, in plain mode (the same
signature, which does not cover the body) or in safe mode (`encrypt_type=aes`: the body's
`Encrypt` is AES-encrypted with the EncodingAESKey for the account's appid, and `msg_signature`
covers it). Once an EncodingAESKey is set, plain messages are refused: only safe mode is accepted.

Events: `subscribe` (with `qrscene_<scene>` when a parametric QR code was scanned), `SCAN` (a
follower scanned one) and `unsubscribe`. A subscribe or scan finds or creates the customer by the
openid and records a touch of the code's share (store_qr / guide_qr, the guide as sharer), which
runs attribution's binding rules; an unsubscribe records the follower's new state. Every event is
kept in the history (`channel_events`). A forged, stale or undecryptable request is refused (4xx)
and changes nothing but the log; a replay is answered "success" and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.attribution.service import shares
from siyu.channels import events
from siyu.channels.models import ChannelEvent, InboundMessage, OaFollower, OaQrCode
from siyu.channels.service import codes, crypto, inbound, wechat_api
from siyu.channels.service import settings as channel_settings
from siyu.channels.service.inbound import CallbackResult, Rejected
from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.events import emit
from siyu.core.i18n import gettext as _
from siyu.customers import service as customers
from siyu.merchants.models import Merchant

CHANNEL = "oa"
OPENID_MAX = 128


def verify_url(session: Session, *, merchant: Merchant, query: Mapping[str, str]) -> CallbackResult:
    """WeChat's server-URL check: echo `echostr` when the signature is the account's."""
    entry = inbound.new_entry(merchant_id=merchant.id, channel=CHANNEL, body=b"")
    entry.msg_type = "url_check"
    config = channel_settings.oa_config(session, merchant_id=merchant.id)
    echostr = query.get("echostr", "")
    try:
        if not config.callback_ready:
            raise Rejected("the official account's callback is not configured", 404)
        if not inbound.fresh(query.get("timestamp")):
            raise Rejected("stale or missing timestamp", 400)
        if not crypto.check(query.get("signature"), config.token, query.get("timestamp", ""), query.get("nonce", "")):
            raise Rejected("bad signature", 403)
        if not echostr or len(echostr) > 200:
            raise Rejected("missing echostr", 400)
    except Rejected as exc:
        return inbound.finish(session, entry, outcome="rejected", status_code=exc.status_code, text="", error=exc.reason)
    entry.verified = True
    return inbound.finish(session, entry, outcome="processed", status_code=200, text=echostr)


def _open(config: channel_settings.OaConfig, query: Mapping[str, str], body: bytes) -> tuple[str, bool]:
    """The message's plaintext after the signature checks (and decryption in safe mode)."""
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if len(body) > inbound.MAX_BODY_BYTES:
        raise Rejected("body too large", 413)
    if not inbound.fresh(timestamp):
        raise Rejected("stale or missing timestamp", 400)
    if query.get("encrypt_type", "raw").lower() != "aes":
        if config.aes_key:
            raise Rejected("plain message refused: the account is in safe mode", 403)
        if not crypto.check(query.get("signature"), config.token, timestamp, nonce):
            raise Rejected("bad signature", 403)
        return body.decode("utf-8", errors="strict"), False
    if not config.aes_key or not config.appid:
        raise Rejected("encrypted message but no EncodingAESKey or AppID is set", 400)
    try:
        outer = crypto.parse_xml(body)
    except ValueError as exc:
        raise Rejected("body is not XML", 400) from exc
    encrypted = outer.get("Encrypt", "")
    if not crypto.check(query.get("msg_signature"), config.token, timestamp, nonce, encrypted):
        raise Rejected("bad msg_signature", 403)
    try:
        return crypto.decrypt(config.aes_key, encrypted, config.appid), True
    except crypto.CryptoError as exc:
        raise Rejected(f"cannot decrypt ({exc})", 400) from exc


def handle(session: Session, *, merchant: Merchant, query: Mapping[str, str], body: bytes) -> CallbackResult:
    """Verify, log and apply one POSTed message. Never raises for a bad request: the caller commits
    so that the log row is kept."""
    entry = inbound.new_entry(merchant_id=merchant.id, channel=CHANNEL, body=body)
    config = channel_settings.oa_config(session, merchant_id=merchant.id)
    try:
        if not config.callback_ready:
            raise Rejected("the official account's callback is not configured", 404)
        plaintext, encrypted = _open(config, query, body)
        try:
            fields = crypto.parse_xml(plaintext)
        except ValueError as exc:
            raise Rejected("message is not XML", 400) from exc
    except UnicodeDecodeError:
        return inbound.finish(session, entry, outcome="rejected", status_code=400, text="", error="body is not UTF-8")
    except Rejected as exc:
        return inbound.finish(session, entry, outcome="rejected", status_code=exc.status_code, text="", error=exc.reason)

    inbound.describe(entry, fields, plaintext=plaintext, encrypted=encrypted)
    try:
        first = inbound.claim(session, entry, inbound.dedupe_key(fields), timestamp=query.get("timestamp", ""),
                              nonce=query.get("nonce", ""))
    except Rejected as exc:
        return inbound.refused_claim(session, entry, exc)
    if first is not None:
        return inbound.duplicate(session, entry, first)

    openid = fields.get("FromUserName", "").strip()
    if not openid or len(openid) > OPENID_MAX:
        return inbound.finish(session, entry, outcome="ignored", status_code=200, error="no sender")
    if fields.get("MsgType", "").lower() != "event":
        return inbound.finish(session, entry, outcome="ignored", status_code=200)
    event = fields.get("Event", "").lower()
    key = fields.get("EventKey", "")
    if event == "subscribe":
        scene = key[len("qrscene_"):] if key.startswith("qrscene_") else ""
        details = _subscribe(session, merchant_id=merchant.id, openid=openid, scene=scene, entry=entry)
    elif event == "scan":
        details = _scan(session, merchant_id=merchant.id, openid=openid, scene=key, entry=entry)
    elif event == "unsubscribe":
        details = _unsubscribe(session, merchant_id=merchant.id, openid=openid, entry=entry)
    else:
        return inbound.finish(session, entry, outcome="ignored", status_code=200)
    return inbound.finish(session, entry, outcome="processed", status_code=200, details=details)


# ---------------------------------------------------------------- events


def _touch(session: Session, *, merchant_id: int, customer_id: int, scene: str) -> tuple[OaQrCode | None, int | None, str]:
    """The touch a scan records: of the QR code's share (or of a share whose code is the scene), else a
    plain official-account touch. Returns (code, touch id, channel)."""
    code = codes.qr_by_scene(session, merchant_id=merchant_id, scene=scene) if scene else None
    share_code = code.share_code if code else None
    channel = codes.QR_CHANNELS[code.kind] if code else "oa"
    if code is None and scene:
        share = shares.share_by_code(session, merchant_id=merchant_id, code=scene)
        if share is not None:
            share_code = share.code
            channel = share.channel if share.channel in ("store_qr", "guide_qr") else "oa"
    touch = shares.record_touch(session, merchant_id=merchant_id, channel=channel, customer_id=customer_id,
                                share_code=share_code, at=clock.now())
    return code, touch.id, channel


def _follower(session: Session, *, merchant_id: int, openid: str) -> OaFollower | None:
    return session.scalars(select(OaFollower).where(OaFollower.merchant_id == merchant_id,
                                                    OaFollower.openid == openid).with_for_update()).first()


def _follow(session: Session, *, merchant_id: int, customer_id: int, openid: str, code: OaQrCode | None,
            new_subscription: bool) -> OaFollower:
    """The follower row, subscribed. A new subscription after an unsubscribe counts once more; a scan
    (already a follower) keeps the count."""
    now = clock.now()
    follower = _follower(session, merchant_id=merchant_id, openid=openid)
    if follower is None:
        follower = OaFollower(merchant_id=merchant_id, customer_id=customer_id, openid=openid, subscribed=True,
                              qr_code_id=code.id if code else None, subscribe_count=1, first_subscribed_at=now,
                              subscribed_at=now, unsubscribed_at=None)
        try:
            with session.begin_nested():
                session.add(follower)
                session.flush()
            return follower
        except IntegrityError:
            follower = _follower(session, merchant_id=merchant_id, openid=openid)
            assert follower is not None
    follower.customer_id = customer_id
    if new_subscription or not follower.subscribed:
        if not follower.subscribed:
            follower.subscribe_count += 1
        follower.subscribed = True
        follower.subscribed_at = now
        if code is not None or new_subscription:
            follower.qr_code_id = code.id if code else None
    session.flush()
    return follower


def _record(session: Session, *, merchant_id: int, kind: str, customer_id: int | None, entry: InboundMessage,
            code: OaQrCode | None = None, scene: str = "", touch_id: int | None = None) -> ChannelEvent:
    row = ChannelEvent(merchant_id=merchant_id, channel=CHANNEL, kind=kind, customer_id=customer_id,
                       staff_id=code.staff_id if code else None, qr_code_id=code.id if code else None,
                       scene=scene[:64], touch_id=touch_id, inbound_id=entry.id, happened_at=clock.now())
    session.add(row)
    session.flush()
    return row


def _subscribe(session: Session, *, merchant_id: int, openid: str, scene: str, entry: InboundMessage) -> dict:
    customer, created = customers.find_or_create_by_identity(session, merchant_id=merchant_id, kind="openid",
                                                             value=openid)
    code, touch_id, channel = _touch(session, merchant_id=merchant_id, customer_id=customer.id, scene=scene)
    follower = _follow(session, merchant_id=merchant_id, customer_id=customer.id, openid=openid, code=code,
                       new_subscription=True)
    _record(session, merchant_id=merchant_id, kind="subscribe", customer_id=customer.id, entry=entry, code=code,
            scene=scene, touch_id=touch_id)
    customers.add_timeline(session, merchant_id=merchant_id, customer_id=customer.id, kind="oa_subscribed",
                           text=_("Followed the official account"),
                           details={"scene": scene[:64], "qr_code_id": code.id if code else None, "channel": channel})
    emit(session, events.OA_SUBSCRIBED, events.OaSubscribed(
        customer_id=customer.id, openid=openid, qr_code_id=code.id if code else None, staff_id=code.staff_id if code else None,
        store_id=code.store_id if code else None, touch_id=touch_id, customer_created=created), merchant_id=merchant_id)
    return {"customer_id": customer.id, "customer_created": created, "touch_id": touch_id, "channel": channel,
            "qr_code_id": code.id if code else None, "subscribe_count": follower.subscribe_count}


def _scan(session: Session, *, merchant_id: int, openid: str, scene: str, entry: InboundMessage) -> dict:
    customer, created = customers.find_or_create_by_identity(session, merchant_id=merchant_id, kind="openid",
                                                             value=openid)
    code, touch_id, channel = _touch(session, merchant_id=merchant_id, customer_id=customer.id, scene=scene)
    _follow(session, merchant_id=merchant_id, customer_id=customer.id, openid=openid, code=code,
            new_subscription=False)
    _record(session, merchant_id=merchant_id, kind="scan", customer_id=customer.id, entry=entry, code=code,
            scene=scene, touch_id=touch_id)
    return {"customer_id": customer.id, "customer_created": created, "touch_id": touch_id, "channel": channel,
            "qr_code_id": code.id if code else None}


def _unsubscribe(session: Session, *, merchant_id: int, openid: str, entry: InboundMessage) -> dict:
    customer = customers.find_by_identity(session, merchant_id=merchant_id, kind="openid", value=openid)
    follower = _follower(session, merchant_id=merchant_id, openid=openid)
    if follower is not None and follower.subscribed:
        follower.subscribed = False
        follower.unsubscribed_at = clock.now()
        if customer is not None:
            follower.customer_id = customer.id
        session.flush()
    _record(session, merchant_id=merchant_id, kind="unsubscribe", customer_id=customer.id if customer else None,
            entry=entry)
    if customer is not None:
        customers.add_timeline(session, merchant_id=merchant_id, customer_id=customer.id, kind="oa_unsubscribed",
                               text=_("Unfollowed the official account"))
    emit(session, events.OA_UNSUBSCRIBED, events.OaUnsubscribed(customer_id=customer.id if customer else None),
         merchant_id=merchant_id)
    return {"customer_id": customer.id if customer else None, "was_follower": follower is not None}


def link_unionid(session: Session, *, merchant_id: int, customer_id: int, openid: str) -> int | None:
    """Ask WeChat for a new follower's unionid (present when the account is bound to an open-platform
    account) and give it to the customer: the same person signed in through the mini-program is then
    one customer (bind_identity merges them). Nothing to do without an AppSecret. Returns the id of the
    customer that lives on, or None when WeChat gave no unionid."""
    config = channel_settings.oa_config(session, merchant_id=merchant_id)
    if not config.appid or not config.secret:
        return None
    info = wechat_api.user_info(session, merchant_id=merchant_id, config=config, openid=openid)
    unionid = info.get("unionid")
    if not isinstance(unionid, str) or not 0 < len(unionid.strip()) <= 128:
        return None
    customer = customers.bind_identity(session, merchant_id=merchant_id, customer_id=customer_id, kind="unionid",
                                       value=unionid, actor=system_principal(merchant_id))
    return customer.id


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """A merged customer's followers and channel history go to the customer that lives on."""
    for model in (OaFollower, ChannelEvent):
        session.execute(update(model).where(model.merchant_id == merchant_id, model.customer_id == source_id)
                        .values(customer_id=target_id))
