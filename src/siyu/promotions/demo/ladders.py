"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — demo data.

A running ladder (7 paying customers so far, past its first threshold, the next one in sight) and one
that ended yesterday and was settled: its final price fixed and each order's difference refunded
through the sandbox. Orders go through checkout and real sandbox payments at past moments.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.demo import DemoContext
from siyu.orders.schemas import CheckoutRequest
from siyu.promotions.demo.common import pay_in_sandbox
from siyu.promotions.service import ladders as service

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
ADDRESS = {"name": "陈晨", "phone": "13800003333", "province": "江苏省", "city": "南京市", "district": "鼓楼区",
           "detail": "中山路 18 号"}


def _price(base: int, bps: int) -> int:
    return max(100, base * bps // 10000 // 10 * 10)


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
    customer_ids = list(ctx.data.get("customer_ids") or [])
    on_sale = list(ctx.data.get("on_sale_skus") or [])
    if ctx.admin is None or len(customer_ids) < 45 or not on_sale:
        return
    stock = catalog.stock_of(session, merchant_id=ctx.merchant_id, sku_ids=[s["sku_id"] for s in on_sale])
    candidates = sorted((s for s in on_sale if stock.get(s["sku_id"], 0) >= 30 and s["price_cents"] >= 1000),
                        key=lambda s: (s["price_cents"], s["sku_id"]))
    if len(candidates) < 2:
        return
    _seed(session, ctx, customer_ids[-45:-30], candidates[0], candidates[1])


def _seed(session: Session, ctx: DemoContext, people: list[int], running_sku: dict, ended_sku: dict) -> None:
    now, admin = ctx.now, ctx.admin
    assert admin is not None

    def campaign(title: str, sku: dict, tiers: list[tuple[int, int]], starts: dt.datetime, ends: dt.datetime) -> int:
        with clock.frozen(starts - HOUR):
            row = service.create_campaign(session, actor=admin, data=service.CampaignIn(
                title=title, sku_id=sku["sku_id"], tiers=tiers, starts_at=starts, ends_at=ends, per_customer_limit=3))
            service.change_campaign_status(session, row.id, actor=admin, action="schedule")
        return row.id

    def buy(campaign_id: int, sku: dict, customer_id: int, quantity: int, at: dt.datetime) -> None:
        request = CheckoutRequest.model_validate({
            "items": [{"sku_id": sku["sku_id"], "quantity": quantity}],
            "fulfilment": {"type": "delivery", "address": ADDRESS},
            "promotion": {"kind": "ladder", "campaign_id": campaign_id}})
        order_id = pay_in_sandbox(session, ctx, customer_id=customer_id, request=request, at=at)
        if order_id is not None:
            # What order.paid's handler does after the commit (idempotent).
            service.mark_paid(session, merchant_id=ctx.merchant_id, order_id=order_id, paid_at=at)

    # Ended yesterday: 7 participants crossed 3 and 6; settled, differences refunded.
    base = ended_sku["price_cents"]
    ended_id = campaign("阶梯团 · 上周的爆款", ended_sku,
                        [(0, base), (3, _price(base, 8500)), (6, _price(base, 7500))],
                        now - 5 * DAY, now - DAY)
    for i, customer_id in enumerate(people[:7]):
        buy(ended_id, ended_sku, customer_id, 1 + i % 2, now - 5 * DAY + (i + 1) * 7 * HOUR)
    with clock.frozen(now - DAY + HOUR):
        service.settle_due(session, clock.now())

    # Running: 7 so far, past 5, 3 more to 10.
    base = running_sku["price_cents"]
    running_id = campaign("越多人买越便宜 · 阶梯价", running_sku,
                          [(0, base), (5, _price(base, 9000)), (10, _price(base, 8000)), (20, _price(base, 7000))],
                          now - DAY, now + 2 * DAY)
    for i, customer_id in enumerate(people[7:14]):
        buy(running_id, running_sku, customer_id, 1, now - DAY + (i + 1) * 2 * HOUR)
    ctx.data["ladder_campaign_ids"] = [running_id, ended_id]
    session.flush()
