"""The WeCom (企业微信) external-contact callback (/webhooks/wecom/{m}).

WeCom always encrypts: `msg_signature` = SHA-1 of the sorted token, timestamp, nonce and the
encrypted text; the text is AES-encrypted with the EncodingAESKey for the corp id. GET is the URL
check (the decrypted `echostr` is answered); POST carries events.

`change_external_contact` events: `add_external_contact` (and `add_half_external_contact`) — a
customer added a guide, through the guide's "contact me" configuration whose `State` names the
guide (else the guide is found by `UserID`): the customer is found or created by the
`ExternalUserID` (identity kind `wecom_ext`), the contact is recorded, and a `wecom` touch with the
guide as sharer runs attribution's binding rules. `del_external_contact` (the guide removed the
customer) and `del_follow_user` (the customer removed the guide) are recorded on the contact.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.attribution.service import shares
from siyu.channels import events
from siyu.channels.models import ChannelEvent, InboundMessage, WecomContact, WecomContactWay
from siyu.channels.service import codes, crypto, inbound
from siyu.channels.service import settings as channel_settings
from siyu.channels.service.inbound import CallbackResult, Rejected
from siyu.core import clock
from siyu.core.events import emit
from siyu.core.i18n import gettext as _
from siyu.customers import service as customers
from siyu.merchants.models import Merchant

CHANNEL = "wecom"
IDENTITY_KIND = "wecom_ext"
ADD_TYPES = ("add_external_contact", "add_half_external_contact")
REMOVE_STATUS = {"del_external_contact": "deleted_by_guide", "del_follow_user": "deleted_by_customer"}


def _checked(config: channel_settings.WecomConfig, query: Mapping[str, str], encrypted: str) -> str:
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if not config.callback_ready:
        raise Rejected("the WeCom callback is not configured", 404)
    if not inbound.fresh(timestamp):
        raise Rejected("stale or missing timestamp", 400)
    if not crypto.check(query.get("msg_signature"), config.token, timestamp, nonce, encrypted):
        raise Rejected("bad msg_signature", 403)
    try:
        return crypto.decrypt(config.aes_key, encrypted, config.corp_id, wecom=True)
    except crypto.CryptoError as exc:
        raise Rejected(f"cannot decrypt ({exc})", 400) from exc


def verify_url(session: Session, *, merchant: Merchant, query: Mapping[str, str]) -> CallbackResult:
    """WeCom's URL check: answer the decrypted `echostr` when its signature is ours."""
    entry = inbound.new_entry(merchant_id=merchant.id, channel=CHANNEL, body=b"")
    entry.msg_type = "url_check"
    config = channel_settings.wecom_config(session, merchant_id=merchant.id)
    try:
        echo = _checked(config, query, query.get("echostr", ""))
    except Rejected as exc:
        return inbound.finish(session, entry, outcome="rejected", status_code=exc.status_code, text="", error=exc.reason)
    entry.verified = True
    return inbound.finish(session, entry, outcome="processed", status_code=200, text=echo)


def handle(session: Session, *, merchant: Merchant, query: Mapping[str, str], body: bytes) -> CallbackResult:
    """Verify, decrypt, log and apply one event. Never raises for a bad request."""
    entry = inbound.new_entry(merchant_id=merchant.id, channel=CHANNEL, body=body)
    config = channel_settings.wecom_config(session, merchant_id=merchant.id)
    try:
        if len(body) > inbound.MAX_BODY_BYTES:
            raise Rejected("body too large", 413)
        try:
            outer = crypto.parse_xml(body)
        except ValueError as exc:
            raise Rejected("body is not XML", 400) from exc
        plaintext = _checked(config, query, outer.get("Encrypt", ""))
        try:
            fields = crypto.parse_xml(plaintext)
        except ValueError as exc:
            raise Rejected("message is not XML", 400) from exc
    except Rejected as exc:
        return inbound.finish(session, entry, outcome="rejected", status_code=exc.status_code, text="", error=exc.reason)

    inbound.describe(entry, fields, plaintext=plaintext, encrypted=True)
    change = fields.get("ChangeType", "")
    key = inbound.dedupe_key(fields, change, fields.get("UserID", ""), fields.get("ExternalUserID", ""))
    try:
        first = inbound.claim(session, entry, key, timestamp=query.get("timestamp", ""), nonce=query.get("nonce", ""))
    except Rejected as exc:
        return inbound.refused_claim(session, entry, exc)
    if first is not None:
        return inbound.duplicate(session, entry, first)
    if fields.get("Event", "") != "change_external_contact":
        return inbound.finish(session, entry, outcome="ignored", status_code=200)
    userid = fields.get("UserID", "").strip()[:64]
    external = fields.get("ExternalUserID", "").strip()
    if not userid or not external or len(external) > 128:
        return inbound.finish(session, entry, outcome="ignored", status_code=200, error="no UserID or ExternalUserID")
    if change in ADD_TYPES:
        details = _added(session, merchant_id=merchant.id, userid=userid, external=external,
                         state=fields.get("State", "").strip(), entry=entry)
    elif change in REMOVE_STATUS:
        details = _removed(session, merchant_id=merchant.id, userid=userid, external=external,
                           status=REMOVE_STATUS[change], kind=change, entry=entry)
    else:
        return inbound.finish(session, entry, outcome="ignored", status_code=200)
    return inbound.finish(session, entry, outcome="processed", status_code=200, details=details)


def _contact(session: Session, *, merchant_id: int, external: str, userid: str) -> WecomContact | None:
    return session.scalars(select(WecomContact).where(
        WecomContact.merchant_id == merchant_id, WecomContact.external_userid == external,
        WecomContact.wecom_userid == userid).with_for_update()).first()


def _record(session: Session, *, merchant_id: int, kind: str, customer_id: int | None, staff_id: int | None,
            state: str, touch_id: int | None, entry: InboundMessage) -> None:
    session.add(ChannelEvent(merchant_id=merchant_id, channel=CHANNEL, kind=kind, customer_id=customer_id,
                             staff_id=staff_id, scene=state[:64], touch_id=touch_id, inbound_id=entry.id,
                             happened_at=clock.now()))
    session.flush()


def _added(session: Session, *, merchant_id: int, userid: str, external: str, state: str,
           entry: InboundMessage) -> dict:
    way: WecomContactWay | None = codes.contact_way_for(session, merchant_id=merchant_id, state=state,
                                                        wecom_userid=userid)
    staff_id = way.staff_id if way else None
    store_id = way.store_id if way else None
    customer, created = customers.find_or_create_by_identity(session, merchant_id=merchant_id, kind=IDENTITY_KIND,
                                                             value=external)
    now = clock.now()
    contact = _contact(session, merchant_id=merchant_id, external=external, userid=userid)
    if contact is None:
        contact = WecomContact(merchant_id=merchant_id, customer_id=customer.id, external_userid=external,
                               wecom_userid=userid, added_at=now)
        try:
            with session.begin_nested():
                session.add(contact)
                session.flush()
        except IntegrityError:
            contact = _contact(session, merchant_id=merchant_id, external=external, userid=userid)
            assert contact is not None
    contact.customer_id, contact.staff_id, contact.store_id = customer.id, staff_id, store_id
    contact.state, contact.status, contact.added_at, contact.removed_at = state[:30], "active", now, None
    session.flush()
    touch = shares.record_touch(session, merchant_id=merchant_id, channel="wecom", customer_id=customer.id,
                                sharer_staff_id=staff_id, target_type="store" if store_id else None,
                                target_id=store_id, at=now)
    _record(session, merchant_id=merchant_id, kind="add_contact", customer_id=customer.id, staff_id=staff_id,
            state=state, touch_id=touch.id, entry=entry)
    customers.add_timeline(session, merchant_id=merchant_id, customer_id=customer.id, kind="wecom_added",
                           text=_("Added a guide on WeCom"), details={"staff_id": staff_id, "state": state[:30]})
    emit(session, events.WECOM_CONTACT_ADDED, events.WecomContactAdded(
        customer_id=customer.id, staff_id=staff_id, store_id=store_id, touch_id=touch.id, customer_created=created),
        merchant_id=merchant_id)
    return {"customer_id": customer.id, "customer_created": created, "staff_id": staff_id, "touch_id": touch.id,
            "contact_way_id": way.id if way else None}


def _removed(session: Session, *, merchant_id: int, userid: str, external: str, status: str, kind: str,
             entry: InboundMessage) -> dict:
    customer = customers.find_by_identity(session, merchant_id=merchant_id, kind=IDENTITY_KIND, value=external)
    contact = _contact(session, merchant_id=merchant_id, external=external, userid=userid)
    if contact is not None and contact.status == "active":
        contact.status, contact.removed_at = status, clock.now()
        session.flush()
    staff_id = contact.staff_id if contact else None
    _record(session, merchant_id=merchant_id, kind=kind, customer_id=customer.id if customer else None,
            staff_id=staff_id, state="", touch_id=None, entry=entry)
    if customer is not None:
        text = _("The guide removed the customer on WeCom") if status == "deleted_by_guide" \
            else _("The customer removed the guide on WeCom")
        customers.add_timeline(session, merchant_id=merchant_id, customer_id=customer.id, kind="wecom_removed",
                               text=text, details={"staff_id": staff_id, "change": kind})
    emit(session, events.WECOM_CONTACT_REMOVED, events.WecomContactRemoved(
        customer_id=customer.id if customer else None, staff_id=staff_id,
        by="guide" if status == "deleted_by_guide" else "customer"), merchant_id=merchant_id)
    return {"customer_id": customer.id if customer else None, "contact_id": contact.id if contact else None}


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    session.execute(update(WecomContact).where(WecomContact.merchant_id == merchant_id,
                                               WecomContact.customer_id == source_id).values(customer_id=target_id))
