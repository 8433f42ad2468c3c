"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — demo data.

A running campaign (5 friends to the floor, 24 hours per bargain, new customers cut 1.5×) with open
bargains (one half-way, one at the floor waiting to be bought), one bought at the floor (checkout and
a real sandbox payment), and one that expired yesterday; plus a draft campaign. Assists go through
the service at past moments (frozen clock), so cuts, counts and the figures are the real ones.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.demo import DemoContext
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest
from siyu.promotions.demo.common import pay_in_sandbox
from siyu.promotions.service import bargains as service

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
ADDRESS = {"name": "周敏", "phone": "13800002222", "province": "浙江省", "city": "杭州市", "district": "西湖区",
           "detail": "文三路 200 号"}


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
    customer_ids = list(ctx.data.get("customer_ids") or [])
    on_sale = list(ctx.data.get("on_sale_skus") or [])
    if ctx.admin is None or len(customer_ids) < 30 or not on_sale:
        return
    stock = catalog.stock_of(session, merchant_id=ctx.merchant_id, sku_ids=[s["sku_id"] for s in on_sale])
    candidates = sorted((s for s in on_sale if stock.get(s["sku_id"], 0) >= 10 and s["price_cents"] >= 3000),
                        key=lambda s: (-s["price_cents"], s["sku_id"]))
    if not candidates:
        return
    _seed(session, ctx, customer_ids[-30:], candidates[0])


def _seed(session: Session, ctx: DemoContext, people: list[int], sku: dict) -> None:
    now, admin = ctx.now, ctx.admin
    assert admin is not None
    start_price = sku["price_cents"]
    floor = max(100, start_price // 10 // 100 * 100)
    with clock.frozen(now - 3 * DAY):
        campaign = service.create_campaign(session, actor=admin, data=service.CampaignIn(
            title="好友助力 · 砍到底价带回家", sku_id=sku["sku_id"], start_price_cents=start_price,
            floor_price_cents=floor, expected_assists=5, time_limit_minutes=24 * 60, starts_at=now - 3 * DAY,
            ends_at=now + 7 * DAY, max_bargains_per_customer=2, new_customer_weight_bps=15000,
            allow_buy_at_current=True))
        service.change_campaign_status(session, campaign.id, actor=admin, action="schedule")
        service.create_campaign(session, actor=admin, data=service.CampaignIn(
            title="砍价 · 下周预告", sku_id=sku["sku_id"], start_price_cents=start_price, floor_price_cents=floor,
            expected_assists=8, time_limit_minutes=12 * 60, starts_at=now + 7 * DAY, ends_at=now + 14 * DAY))
    people_iter = iter(people)

    def customer(cid: int) -> Principal:
        return Principal(merchant_id=ctx.merchant_id, kind="customer", subject_id=cid)

    def bargain(started: dt.datetime, helpers: int) -> tuple[int, int]:
        starter = next(people_iter)
        with clock.frozen(started):
            row = service.start_bargain(session, actor=customer(starter), campaign_id=campaign.id,
                                        seed=ctx.rng.getrandbits(62))
        for i in range(helpers):
            with clock.frozen(started + (i + 1) * 25 * dt.timedelta(minutes=1)):
                service.assist(session, actor=customer(next(people_iter)), bargain_id=row.id,
                               visitor_id=f"demo-visitor-{row.id}-{i}", device_id=f"demo-device-{row.id}-{i}")
        return row.id, starter

    # Expired yesterday with two assists.
    bargain(now - 2 * DAY - 2 * HOUR, 2)
    with clock.frozen(now - DAY):
        service.expire_due(session, clock.now())
    # Bought at the floor.
    bought_id, buyer = bargain(now - 20 * HOUR, 5)
    request = CheckoutRequest.model_validate({
        "items": [{"sku_id": sku["sku_id"], "quantity": 1}], "fulfilment": {"type": "delivery", "address": ADDRESS},
        "promotion": {"kind": "bargain", "bargain_id": bought_id}})
    paid_at = now - 16 * HOUR
    order_id = pay_in_sandbox(session, ctx, customer_id=buyer, request=request, at=paid_at)
    if order_id is not None:
        order = orders.get_order(session, order_id, actor=admin)
        # What order.paid's handler does after the commit (idempotent: the later run changes nothing).
        service.mark_paid(session, merchant_id=ctx.merchant_id, order_id=order_id, paid_cents=order.total_cents,
                          paid_at=paid_at)
    # Open: one at the floor waiting to be bought, one half-way.
    bargain(now - 6 * HOUR, 5)
    bargain(now - 3 * HOUR, 3)
    ctx.data["bargain_campaign_ids"] = [campaign.id]
    session.flush()
