"""Service-level rules: the crypto against wechatpy, customer merges, contact-way rules, the demo."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from siyu.channels.handlers import move_merged_customer
from siyu.channels.models import ChannelEvent, OaFollower, OaQrCode, WecomContact, WecomContactWay
from siyu.channels.service import codes, crypto
from siyu.core.auth import Role
from siyu.core.errors import ValidationFailed
from siyu.core.events import Event
from siyu.customers.models import Customer
from siyu.customers.service import find_by_identity
from siyu.demo import demo_now, seed_demo
from tests.channels import wechat_messages as wm
from tests.channels.conftest import APPID
from tests.conftest import fresh_database
from tests.factories.merchants import make_staff, principal_of


def test_our_encryption_and_wechatpys_agree():
    key, token = wm.new_aes_key(), "tok123"
    wechat = WeChatCrypto(token, key, APPID)
    # a message encrypted by wechatpy (as WeChat would) is decrypted by our service code …
    xml = wechat.encrypt_message("<xml><A>b</A></xml>", "nonce1", "1700000000")
    fields = crypto.parse_xml(xml)
    assert crypto.check(fields["MsgSignature"], token, "1700000000", "nonce1", fields["Encrypt"])
    assert crypto.decrypt(key, fields["Encrypt"], APPID) == "<xml><A>b</A></xml>"
    # … and one encrypted by the test helper (written from WeChat's documentation) by wechatpy
    encrypted = wm.encrypt(key, "<xml><A>中文</A></xml>", APPID)
    signature = wm.sign(token, "1700000001", "n2", encrypted)
    assert wechat.decrypt_message(f"<xml><Encrypt>{encrypted}</Encrypt></xml>", signature, "1700000001", "n2") \
        == "<xml><A>中文</A></xml>"
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(key, encrypted, "wx-another-app")
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(key, "not base64 at all!", APPID)


def test_xml_with_entities_is_refused():
    with pytest.raises(ValueError):
        crypto.parse_xml('<!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>')
    with pytest.raises(ValueError):
        crypto.parse_xml("<notxml/>")
    assert crypto.parse_xml("<xml><A>1</A><B/></xml>") == {"A": "1", "B": ""}


def test_a_merge_moves_followers_contacts_and_history(client, db, ch):
    ch.post_oa(client, wm.oa_event(openid="o-merge", event="subscribe", key=""))
    codes.set_contact_way(db, actor=principal_of(db, ch.admin), staff_id=ch.guide.id, wecom_userid="zs")
    ch.post_wecom(client, wm.wecom_event(corp_id="ww0123456789abcd", change="add_external_contact", userid="zs",
                                         external="wmMERGE", state=f"g{ch.guide.id}"))
    source = find_by_identity(db, merchant_id=ch.merchant.id, kind="openid", value="o-merge")
    target = find_by_identity(db, merchant_id=ch.merchant.id, kind="wecom_ext", value="wmMERGE")
    assert source.id != target.id

    move_merged_customer(db, Event(id=1, name="customer.merged", merchant_id=ch.merchant.id,
                                   payload={"source_id": source.id, "target_id": target.id}))

    db.expire_all()
    assert db.scalars(select(OaFollower.customer_id).where(OaFollower.openid == "o-merge")).one() == target.id
    assert db.scalars(select(WecomContact.customer_id).where(WecomContact.external_userid == "wmMERGE")).one() \
        == target.id
    assert set(db.scalars(select(ChannelEvent.customer_id).where(ChannelEvent.merchant_id == ch.merchant.id))) \
        == {target.id}


def test_contact_way_rules(db, ch):
    admin = principal_of(db, ch.admin)
    way = codes.set_contact_way(db, actor=admin, staff_id=ch.guide.id, wecom_userid="zs", state="desk")
    again = codes.set_contact_way(db, actor=admin, staff_id=ch.guide.id, wecom_userid="zs2", state="desk2")
    assert again.id == way.id and (again.wecom_userid, again.state) == ("zs2", "desk2")
    with pytest.raises(ValidationFailed):
        codes.set_contact_way(db, actor=admin, staff_id=ch.guide2.id, wecom_userid="ls", state="desk2")
    brand = make_staff(db, merchant=ch.merchant, role=Role.BRAND_ADMIN)
    with pytest.raises(ValidationFailed):  # only guides and store managers serve customers
        codes.set_contact_way(db, actor=admin, staff_id=brand.id, wecom_userid="boss")
    assert db.scalar(select(func.count(WecomContactWay.id)).where(WecomContactWay.merchant_id == ch.merchant.id)) == 1
    assert codes.contact_way_for(db, merchant_id=ch.merchant.id, state="nope", wecom_userid="zs2").id == way.id
    assert codes.contact_way_for(db, merchant_id=ch.merchant.id, state="", wecom_userid="nobody") is None


def test_the_demo_has_codes_followers_and_contacts(backend):
    database = fresh_database(backend, name="h3demo")
    try:
        ctx = seed_demo(database, scale=0.02, now=demo_now(dt.date(2026, 5, 20)))
        with database.scope() as session:
            m = ctx.merchant_id
            n_codes = session.scalar(select(func.count(OaQrCode.id)).where(OaQrCode.merchant_id == m))
            assert n_codes == len(ctx.store_ids) + len(ctx.guide_ids)
            followers = session.scalars(select(OaFollower).where(OaFollower.merchant_id == m)).all()
            assert followers and all(f.customer_id for f in followers)
            # each follower's openid is the one its customer signs in with
            one = followers[0]
            assert find_by_identity(session, merchant_id=m, kind="openid", value=one.openid).id == one.customer_id
            assert session.scalar(select(func.count(WecomContact.id)).where(WecomContact.merchant_id == m)) > 0
            assert session.scalar(select(func.count(Customer.id)).where(Customer.merchant_id == m)) > 0
    finally:
        database.dispose()


def test_old_inbound_messages_are_pruned(client, db, ch):
    from siyu.channels.jobs import prune_inbound
    from siyu.channels.models import InboundMessage
    from siyu.core import clock

    ch.post_oa(client, wm.oa_event(openid="o-old", event="subscribe", key=""))
    ch.post_oa(client, wm.oa_event(openid="o-new", event="subscribe", key=""))
    rows = db.scalars(select(InboundMessage).where(InboundMessage.merchant_id == ch.merchant.id)
                      .order_by(InboundMessage.id)).all()
    rows[0].received_at = clock.now() - dt.timedelta(days=91)
    db.flush()

    assert prune_inbound(db, clock.now()) == 1
    assert prune_inbound(db, clock.now()) == 0
    assert db.scalars(select(InboundMessage.id).where(InboundMessage.merchant_id == ch.merchant.id)).all() \
        == [rows[1].id]
