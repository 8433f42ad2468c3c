"""The official-account and WeCom callbacks over HTTP, with real signed and encrypted messages."""

from __future__ import annotations

import time
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from siyu.attribution.models.shares import Touch
from siyu.channels.models import ChannelEvent, InboundMessage, OaFollower, WecomContact
from siyu.channels.service import codes
from siyu.core.models import OutboxEvent
from siyu.customers.models import Customer, CustomerIdentity
from siyu.customers.service import find_by_identity
from tests.channels import wechat_messages as wm
from tests.channels.conftest import APPID, CORP_ID, configure
from tests.factories.merchants import principal_of


def count(db, model, **where) -> int:
    stmt = select(func.count()).select_from(model)
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    return db.scalar(stmt)


def guide_code(db, ch, fake_oa):
    code, _created = codes.create_oa_qr(db, actor=principal_of(db, ch.admin), staff_id=ch.guide.id)
    return code


def nothing_changed(db, ch) -> None:
    m = ch.merchant.id
    assert count(db, Customer, merchant_id=m) == 0
    assert count(db, OaFollower, merchant_id=m) == 0
    assert count(db, WecomContact, merchant_id=m) == 0
    assert count(db, ChannelEvent, merchant_id=m) == 0
    assert count(db, Touch, merchant_id=m) == 0
    assert channel_events(db, ch) == []


def channel_events(db, ch) -> list[tuple[str, dict]]:
    rows = db.execute(select(OutboxEvent.name, OutboxEvent.payload).where(
        OutboxEvent.merchant_id == ch.merchant.id, OutboxEvent.name.like("channels.%")).order_by(OutboxEvent.id))
    return [(name, payload) for name, payload in rows]


# ---------------------------------------------------------------- URL checks


def test_oa_url_check_echoes_only_a_valid_signature(client, db, ch):
    ts, nonce = str(int(time.time())), "n0nce"
    good = {"signature": wm.sign(ch.oa_token, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "echo-123"}

    ok = client.get(f"{ch.oa_url}?{urlencode(good)}")
    forged = client.get(f"{ch.oa_url}?{urlencode({**good, 'signature': wm.sign('other', ts, nonce)})}")

    assert (ok.status_code, ok.text) == (200, "echo-123")
    assert forged.status_code == 403 and "echo-123" not in forged.text


def test_wecom_url_check_answers_the_decrypted_echostr(client, db, ch):
    ts, nonce = str(int(time.time())), "abc"
    echostr = wm.encrypt(ch.wecom_aes_key, "1616140317555161061", CORP_ID)
    query = {"msg_signature": wm.sign(ch.wecom_token, ts, nonce, echostr), "timestamp": ts, "nonce": nonce,
             "echostr": echostr}

    ok = client.get(f"{ch.wecom_url}?{urlencode(query)}")
    forged = client.get(f"{ch.wecom_url}?{urlencode({**query, 'msg_signature': 'f' * 40})}")
    other_corp = wm.encrypt(ch.wecom_aes_key, "1616140317555161061", "ww-other-corp")
    wrong_corp = client.get(f"{ch.wecom_url}?" + urlencode(
        {**query, "echostr": other_corp, "msg_signature": wm.sign(ch.wecom_token, ts, nonce, other_corp)}))

    assert (ok.status_code, ok.text) == (200, "1616140317555161061")
    assert forged.status_code == 403
    assert wrong_corp.status_code == 400


# ---------------------------------------------------------------- official account


def test_subscribe_with_a_guide_scene_creates_the_customer_touch_and_binding(client, db, ch, fake_oa):
    # given the guide's permanent QR code
    code = guide_code(db, ch, fake_oa)
    message = wm.oa_event(openid="o-new-fan", event="subscribe", key=f"qrscene_{code.scene}", ticket=code.ticket)

    # when a new WeChat user scans it and subscribes (safe mode)
    response = ch.post_oa(client, message)

    # then
    assert (response.status_code, response.text) == (200, "success")
    customer = find_by_identity(db, merchant_id=ch.merchant.id, kind="openid", value="o-new-fan")
    assert customer is not None
    follower = db.scalars(select(OaFollower).where(OaFollower.openid == "o-new-fan")).one()
    assert (follower.customer_id, follower.subscribed, follower.qr_code_id, follower.subscribe_count) == (
        customer.id, True, code.id, 1)
    touch = db.scalars(select(Touch).where(Touch.customer_id == customer.id)).one()
    assert (touch.channel, touch.sharer_staff_id, touch.share_code, touch.target_type, touch.target_id) == (
        "guide_qr", ch.guide.id, code.share_code, "store", ch.store.id)
    event = db.scalars(select(ChannelEvent).where(ChannelEvent.customer_id == customer.id)).one()
    assert (event.kind, event.qr_code_id, event.staff_id, event.touch_id) == ("subscribe", code.id, ch.guide.id, touch.id)
    db.refresh(customer)
    assert (customer.owner_id, customer.store_id) == (ch.guide.id, ch.store.id)
    log = db.scalars(select(InboundMessage).where(InboundMessage.merchant_id == ch.merchant.id)).one()
    assert (log.outcome, log.verified, log.encrypted, log.event) == ("processed", True, True, "subscribe")
    assert channel_events(db, ch) == [("channels.oa_subscribed", {
        "customer_id": customer.id, "openid": "o-new-fan", "qr_code_id": code.id, "staff_id": ch.guide.id, "store_id": ch.store.id,
        "touch_id": touch.id, "customer_created": True})]


def test_subscribe_without_a_scene_and_then_scan_a_store_code(client, db, ch, fake_oa):
    store_code, _ = codes.create_oa_qr(db, actor=principal_of(db, ch.admin), store_id=ch.store.id)
    assert ch.post_oa(client, wm.oa_event(openid="o-fan", event="subscribe", key="")).text == "success"
    customer = find_by_identity(db, merchant_id=ch.merchant.id, kind="openid", value="o-fan")
    assert db.scalars(select(Touch.channel).where(Touch.customer_id == customer.id)).all() == ["oa"]

    # when the follower scans the store's code
    response = ch.post_oa(client, wm.oa_event(openid="o-fan", event="SCAN", key=store_code.scene))

    assert response.text == "success"
    channels = db.scalars(select(Touch.channel).where(Touch.customer_id == customer.id).order_by(Touch.id)).all()
    assert channels == ["oa", "store_qr"]
    follower = db.scalars(select(OaFollower).where(OaFollower.openid == "o-fan")).one()
    assert (follower.subscribe_count, follower.subscribed) == (1, True)
    kinds = db.scalars(select(ChannelEvent.kind).where(ChannelEvent.customer_id == customer.id)
                       .order_by(ChannelEvent.id)).all()
    assert kinds == ["subscribe", "scan"]
    # a store code has no person behind it: the customer is not bound to anyone
    db.refresh(customer)
    assert customer.owner_id is None


def test_unsubscribe_and_subscribe_again(client, db, ch):
    now = int(time.time())
    ch.post_oa(client, wm.oa_event(openid="o-leaver", event="subscribe", key="", create_time=now - 60))

    assert ch.post_oa(client, wm.oa_event(openid="o-leaver", event="unsubscribe", create_time=now - 30)).text == "success"

    follower = db.scalars(select(OaFollower).where(OaFollower.openid == "o-leaver")).one()
    db.refresh(follower)
    assert follower.subscribed is False and follower.unsubscribed_at is not None
    events = db.scalars(select(ChannelEvent.kind).where(ChannelEvent.merchant_id == ch.merchant.id)
                        .order_by(ChannelEvent.id)).all()
    assert events == ["subscribe", "unsubscribe"]

    ch.post_oa(client, wm.oa_event(openid="o-leaver", event="subscribe", key="", create_time=now))
    db.refresh(follower)
    assert (follower.subscribed, follower.subscribe_count) == (True, 2)
    assert count(db, Customer, merchant_id=ch.merchant.id) == 1


def test_plain_mode_works_without_an_aes_key_and_is_refused_with_one(client, db, ch):
    message = wm.oa_event(openid="o-plain", event="subscribe", key="")

    refused = ch.post_oa(client, message, safe=False)
    assert refused.status_code == 403
    nothing_changed(db, ch)

    configure(db, ch.merchant, wechat_oa_aes_key="")
    accepted = ch.post_oa(client, message, safe=False)
    assert (accepted.status_code, accepted.text) == (200, "success")
    assert find_by_identity(db, merchant_id=ch.merchant.id, kind="openid", value="o-plain") is not None


def test_a_forged_signature_changes_nothing(client, db, ch):
    message = wm.oa_event(openid="o-forger", event="subscribe", key="")

    # signed with another token
    query, body = wm.safe_request("not-the-token", ch.oa_aes_key, APPID, message)
    forged = client.post(f"{ch.oa_url}?{query}", content=body)
    # encrypted with another key
    query2, body2 = wm.safe_request(ch.oa_token, wm.new_aes_key(), APPID, message)
    wrong_key = client.post(f"{ch.oa_url}?{query2}", content=body2)
    # encrypted for another official account
    query3, body3 = wm.safe_request(ch.oa_token, ch.oa_aes_key, "wx-someone-else", message)
    wrong_app = client.post(f"{ch.oa_url}?{query3}", content=body3)
    # a valid request whose body was swapped
    query4, _ = wm.safe_request(ch.oa_token, ch.oa_aes_key, APPID, message)
    _, other_body = wm.safe_request(ch.oa_token, ch.oa_aes_key, APPID, message)
    swapped = client.post(f"{ch.oa_url}?{query4}", content=other_body)

    assert forged.status_code == 403 and forged.json()["error"]["code"] == "invalid_signature"
    assert wrong_key.status_code == 400
    assert wrong_app.status_code == 400
    assert swapped.status_code == 403
    nothing_changed(db, ch)
    outcomes = db.scalars(select(InboundMessage.outcome).where(InboundMessage.merchant_id == ch.merchant.id)).all()
    assert outcomes == ["rejected"] * 4


def test_a_stale_timestamp_is_refused(client, db, ch):
    message = wm.oa_event(openid="o-late", event="subscribe", key="")

    response = ch.post_oa(client, message, timestamp=int(time.time()) - 3600)

    assert response.status_code == 400
    nothing_changed(db, ch)


def test_a_replayed_event_changes_nothing(client, db, ch, fake_oa):
    code = guide_code(db, ch, fake_oa)
    message = wm.oa_event(openid="o-twice", event="subscribe", key=f"qrscene_{code.scene}", create_time=1700000000)

    first = ch.post_oa(client, message)
    replay = ch.post_oa(client, message)  # freshly signed, same message: WeChat's retry or an attacker's replay

    assert first.text == replay.text == "success"
    m = ch.merchant.id
    assert count(db, Customer, merchant_id=m) == 1
    assert count(db, Touch, merchant_id=m) == 1
    assert count(db, ChannelEvent, merchant_id=m) == 1
    assert [name for name, _ in channel_events(db, ch)] == ["channels.oa_subscribed"]
    follower = db.scalars(select(OaFollower).where(OaFollower.openid == "o-twice")).one()
    assert follower.subscribe_count == 1
    rows = db.scalars(select(InboundMessage).where(InboundMessage.merchant_id == m).order_by(InboundMessage.id)).all()
    assert [r.outcome for r in rows] == ["processed", "duplicate"]
    assert rows[1].duplicate_of_id == rows[0].id


def test_a_replayed_text_message_by_msgid(client, db, ch):
    message = wm.oa_text(openid="o-chat", content="你好", msg_id=1234567890123456)

    assert ch.post_oa(client, message).text == "success"
    assert ch.post_oa(client, message).text == "success"

    outcomes = db.scalars(select(InboundMessage.outcome).where(InboundMessage.merchant_id == ch.merchant.id)
                          .order_by(InboundMessage.id)).all()
    assert outcomes == ["ignored", "duplicate"]
    assert count(db, Customer, merchant_id=ch.merchant.id) == 0


def test_garbage_and_unknown_merchants(client, db, ch):
    assert client.post(f"{ch.oa_url}?timestamp=1&nonce=2&signature=3", content=b"\xff\xfe<xml").status_code == 400
    ts = str(int(time.time()))
    query = urlencode({"signature": wm.sign(ch.oa_token, ts, "n"), "timestamp": ts, "nonce": "n",
                       "encrypt_type": "aes", "msg_signature": "x"})
    assert client.post(f"{ch.oa_url}?{query}", content=b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml>&a;</xml>").status_code \
        in (400, 403)
    assert client.post("/webhooks/wechat/oa/no-such-shop", content=b"<xml/>").status_code == 404
    nothing_changed(db, ch)


# ---------------------------------------------------------------- WeCom


def test_wecom_add_contact_binds_the_customer_to_the_guide_then_deletions(client, db, ch):
    way = codes.set_contact_way(db, actor=principal_of(db, ch.admin), staff_id=ch.guide.id, wecom_userid="zhangsan",
                                state="")
    added = wm.wecom_event(corp_id=CORP_ID, change="add_external_contact", userid="zhangsan",
                           external="wmEXT001", state=way.state)

    response = ch.post_wecom(client, added)

    assert (response.status_code, response.text) == (200, "success")
    customer = find_by_identity(db, merchant_id=ch.merchant.id, kind="wecom_ext", value="wmEXT001")
    assert customer is not None
    contact = db.scalars(select(WecomContact).where(WecomContact.external_userid == "wmEXT001")).one()
    assert (contact.customer_id, contact.staff_id, contact.store_id, contact.status) == (
        customer.id, ch.guide.id, ch.store.id, "active")
    touch = db.scalars(select(Touch).where(Touch.customer_id == customer.id)).one()
    assert (touch.channel, touch.sharer_staff_id) == ("wecom", ch.guide.id)
    db.refresh(customer)
    assert customer.owner_id == ch.guide.id

    # a replay changes nothing
    assert ch.post_wecom(client, added).text == "success"
    assert count(db, Touch, merchant_id=ch.merchant.id) == 1
    assert count(db, ChannelEvent, merchant_id=ch.merchant.id) == 1

    # the customer removes the guide
    removed = wm.wecom_event(corp_id=CORP_ID, change="del_follow_user", userid="zhangsan", external="wmEXT001")
    assert ch.post_wecom(client, removed).text == "success"
    db.refresh(contact)
    assert contact.status == "deleted_by_customer" and contact.removed_at is not None
    kinds = db.scalars(select(ChannelEvent.kind).where(ChannelEvent.merchant_id == ch.merchant.id)
                       .order_by(ChannelEvent.id)).all()
    assert kinds == ["add_contact", "del_follow_user"]
    assert [(n, p.get("by")) for n, p in channel_events(db, ch)] == [
        ("channels.wecom_contact_added", None), ("channels.wecom_contact_removed", "customer")]


def test_wecom_guide_found_by_userid_and_del_external_contact(client, db, ch):
    codes.set_contact_way(db, actor=principal_of(db, ch.admin), staff_id=ch.guide2.id, wecom_userid="lisi",
                          state="shop-desk")
    ch.post_wecom(client, wm.wecom_event(corp_id=CORP_ID, change="add_external_contact", userid="lisi",
                                         external="wmEXT002"))
    contact = db.scalars(select(WecomContact).where(WecomContact.external_userid == "wmEXT002")).one()
    assert contact.staff_id == ch.guide2.id

    ch.post_wecom(client, wm.wecom_event(corp_id=CORP_ID, change="del_external_contact", userid="lisi",
                                         external="wmEXT002"))
    db.refresh(contact)
    assert contact.status == "deleted_by_guide"


def test_wecom_forged_or_foreign_messages_change_nothing(client, db, ch):
    message = wm.wecom_event(corp_id=CORP_ID, change="add_external_contact", userid="zhangsan", external="wmEXT9")

    query, body = wm.wecom_request("wrongtoken", ch.wecom_aes_key, CORP_ID, message)
    forged = client.post(f"{ch.wecom_url}?{query}", content=body)
    query2, body2 = wm.wecom_request(ch.wecom_token, ch.wecom_aes_key, "ww-other", message)
    foreign = client.post(f"{ch.wecom_url}?{query2}", content=body2)
    stale = ch.post_wecom(client, message, timestamp=int(time.time()) - 86400)

    assert (forged.status_code, foreign.status_code, stale.status_code) == (403, 400, 400)
    nothing_changed(db, ch)
    assert count(db, CustomerIdentity, kind="wecom_ext", value="wmEXT9") == 0


# ---------------------------------------------------------------- arbitrary content in valid envelopes


_field = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(event=st.sampled_from(["subscribe", "SCAN", "unsubscribe", "LOCATION", "", "subscribe\u200b"]),
       openid=_field, key=_field, raw=st.booleans(), junk=_field)
def test_signed_messages_with_any_content_never_fail_the_server(client, db, ch, event, openid, key, raw, junk):
    if raw:
        message = junk
    else:
        message = (f"<xml><FromUserName>{escape(openid)}</FromUserName><CreateTime>{len(junk)}</CreateTime>"
                   f"<MsgType>event</MsgType><Event>{escape(event)}</Event><EventKey>{escape(key)}</EventKey></xml>")
    oa = ch.post_oa(client, message)
    wecom = ch.post_wecom(client, message.replace("<Event>", "<Event>change_external_contact</Event><ChangeType>")
                          .replace("</Event><EventKey>", "</ChangeType><UserID>").replace("</EventKey>", "</UserID>"))
    assert oa.status_code in (200, 400), oa.text
    assert wecom.status_code in (200, 400), wecom.text


def test_a_plain_mode_signature_is_good_for_one_message_only(client, db, ch):
    # given an account in plain mode, whose signature does not cover the body
    configure(db, ch.merchant, wechat_oa_aes_key="")
    query, body = wm.plain_request(ch.oa_token, wm.oa_event(openid="o-real", event="unsubscribe"))
    assert client.post(f"{ch.oa_url}?{query}", content=body).text == "success"

    # when someone who captured that request sends another message with the same signature
    forged = wm.oa_event(openid="o-victim", event="subscribe", key="")
    response = client.post(f"{ch.oa_url}?{query}", content=forged.encode())
    # and the original request is replayed as it was
    replay = client.post(f"{ch.oa_url}?{query}", content=body)

    # then the forged one is refused and changes nothing; the replay is a harmless duplicate
    assert response.status_code == 403
    assert replay.text == "success"
    assert find_by_identity(db, merchant_id=ch.merchant.id, kind="openid", value="o-victim") is None
    assert count(db, OaFollower, merchant_id=ch.merchant.id) == 0
    outcomes = db.scalars(select(InboundMessage.outcome).where(InboundMessage.merchant_id == ch.merchant.id)
                          .order_by(InboundMessage.id)).all()
    assert outcomes == ["processed", "rejected", "duplicate"]


def test_a_new_follower_with_a_known_unionid_becomes_the_mini_program_customer(client, db, ch, fake_oa):
    # given a customer who signed in through the mini-program (openid of the mini-program, and the unionid)
    from siyu.customers.service import bind_identity
    from tests.factories.customers import make_customer

    known = make_customer(db, merchant=ch.merchant, openid="mini-openid-1", nickname="老顾客")
    bind_identity(db, merchant_id=ch.merchant.id, customer_id=known.id, kind="unionid", value="union-1")
    fake_oa.unionids["o-oa-fan"] = "union-1"

    # when the same person follows the official account (another openid)
    assert ch.post_oa(client, wm.oa_event(openid="o-oa-fan", event="subscribe", key="")).text == "success"

    # then, once the subscribe event's handler asked WeChat for the unionid, they are one customer
    db.expire_all()
    assert find_by_identity(db, merchant_id=ch.merchant.id, kind="openid", value="o-oa-fan").id == known.id
    follower = db.scalars(select(OaFollower).where(OaFollower.openid == "o-oa-fan")).one()
    assert follower.customer_id == known.id
    assert [r["path"] for r in fake_oa.requests] == ["/cgi-bin/token", "/cgi-bin/user/info"]
