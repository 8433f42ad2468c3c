"""Demo WeChat channels: an official-account QR code for every demo store and guide (tied to the
store's and the guide's QR shares), the guides' WeCom contact ways, some customers following the
official account through those codes (a few have unfollowed) and some in the guides' WeCom
contacts, with their history. The demo is not connected to WeChat: the codes' tickets and URLs are
made up, and no AppSecret is set.

Deterministic (ctx.rng, ctx.now) and small: a few hundred rows in bulk inserts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from siyu.attribution.service import shares
from siyu.channels.models import ChannelEvent, OaFollower, OaQrCode, WecomContact, WecomContactWay
from siyu.channels.service import settings as channel_settings
from siyu.core.demo import DemoContext
from siyu.customers import service as customers
from siyu.merchants import service as merchants

DEMO_APPID = "wxd0000000000000de"
DEMO_CORP_ID = "wwd00000000000de"
DEMO_TOKEN = "siyudemotoken"
FOLLOWERS = 120
WECOM_CONTACTS = 40


def _aes_key(ctx: DemoContext) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    while True:
        key = "".join(ctx.rng.choice(alphabet) for _ in range(43))
        if channel_settings.aes_key_valid(key):
            return key


def seed(session: Session, ctx: DemoContext) -> None:
    rng, m, now = ctx.rng, ctx.merchant_id, ctx.now
    if not m:
        return
    # The callback settings, so the callbacks can be tried with locally signed messages.
    merchants.update_merchant(session, actor=ctx.admin, settings={  # type: ignore[arg-type]
        channel_settings.OA_APPID: DEMO_APPID, channel_settings.OA_TOKEN: DEMO_TOKEN,
        channel_settings.OA_AES_KEY: _aes_key(ctx), channel_settings.WECOM_CORP_ID: DEMO_CORP_ID,
        channel_settings.WECOM_TOKEN: DEMO_TOKEN, channel_settings.WECOM_AES_KEY: _aes_key(ctx)})
    since = now - dt.timedelta(days=300)

    code_rows: list[dict[str, Any]] = []
    for store_id in ctx.store_ids:
        share = shares.store_qr_share(session, merchant_id=m, store_id=store_id)
        name = merchants.get_store(session, store_id, actor=ctx.admin).name  # type: ignore[arg-type]
        code_rows.append({"kind": "store", "store_id": store_id, "staff_id": None, "target_key": f"store:{store_id}",
                          "share_code": share.code, "label": name})
    names = merchants.staff_names(session, m, list(ctx.guide_ids))
    for guide_id in ctx.guide_ids:
        share = shares.guide_qr_share(session, merchant_id=m, staff_id=guide_id)
        code_rows.append({"kind": "guide", "store_id": ctx.guide_store.get(guide_id), "staff_id": guide_id,
                          "target_key": f"guide:{guide_id}", "share_code": share.code, "label": names.get(guide_id, "")})
    for row in code_rows:
        row.update(merchant_id=m, scene=row["share_code"], ticket=f"demo-ticket-{row['share_code']}",
                   url=f"http://weixin.qq.com/q/demo-{row['share_code']}", created_by_id=None, created_at=since)
    code_ids = list(session.scalars(insert(OaQrCode).returning(OaQrCode.id, sort_by_parameter_order=True), code_rows))

    session.execute(insert(WecomContactWay), [
        {"merchant_id": m, "staff_id": g, "store_id": ctx.guide_store.get(g), "wecom_userid": f"guide{i + 1}",
         "state": f"g{g}", "config_id": "", "active": True, "created_by_id": None, "created_at": since}
        for i, g in enumerate(ctx.guide_ids)])

    customer_ids = list(ctx.data.get("customer_ids", []))
    if not customer_ids:
        return
    picked = rng.sample(range(len(customer_ids)), min(FOLLOWERS, len(customer_ids)))
    followers, history = [], []
    for index in picked:
        at = now - dt.timedelta(seconds=rng.randrange(90 * 86400))
        code_id = rng.choice(code_ids) if rng.random() < 0.8 else None
        code = code_rows[code_ids.index(code_id)] if code_id else None
        left = rng.random() < 0.12
        left_at = at + dt.timedelta(days=rng.randint(1, 20)) if left else None
        if left_at and left_at > now:
            left, left_at = False, None
        openid = f"demo-openid-{m}-{index:06d}"  # the openid the customers demo gave this customer
        followers.append({"merchant_id": m, "customer_id": customer_ids[index], "openid": openid, "subscribed": not left,
                          "qr_code_id": code_id, "subscribe_count": 1, "first_subscribed_at": at,
                          "subscribed_at": at, "unsubscribed_at": left_at})
        history.append({"merchant_id": m, "channel": "oa", "kind": "subscribe", "customer_id": customer_ids[index],
                        "staff_id": code["staff_id"] if code else None, "qr_code_id": code_id,
                        "scene": code["share_code"] if code else "", "touch_id": None, "inbound_id": None,
                        "happened_at": at})
        if left_at:
            history.append({"merchant_id": m, "channel": "oa", "kind": "unsubscribe",
                            "customer_id": customer_ids[index], "staff_id": None, "qr_code_id": None, "scene": "",
                            "touch_id": None, "inbound_id": None, "happened_at": left_at})
    session.execute(insert(OaFollower), followers)

    contacts = []
    for n, index in enumerate(rng.sample(range(len(customer_ids)), min(WECOM_CONTACTS, len(customer_ids)))):
        guide_id = rng.choice(ctx.guide_ids)
        external = f"wmdemo{m}x{n:05d}"
        customer = customers.bind_identity(session, merchant_id=m, customer_id=customer_ids[index], kind="wecom_ext",
                                           value=external)
        at = now - dt.timedelta(seconds=rng.randrange(60 * 86400))
        removed = rng.random() < 0.1 and at + dt.timedelta(days=3) <= now
        contacts.append({"merchant_id": m, "customer_id": customer.id, "external_userid": external,
                         "wecom_userid": f"guide{ctx.guide_ids.index(guide_id) + 1}", "staff_id": guide_id,
                         "store_id": ctx.guide_store.get(guide_id), "state": f"g{guide_id}",
                         "status": "deleted_by_customer" if removed else "active", "added_at": at,
                         "removed_at": at + dt.timedelta(days=3) if removed else None})
        history.append({"merchant_id": m, "channel": "wecom", "kind": "add_contact", "customer_id": customer.id,
                        "staff_id": guide_id, "qr_code_id": None, "scene": f"g{guide_id}",
                        "touch_id": None, "inbound_id": None, "happened_at": at})
    session.execute(insert(WecomContact), contacts)
    history.sort(key=lambda r: r["happened_at"])
    session.execute(insert(ChannelEvent), history)
    session.flush()
