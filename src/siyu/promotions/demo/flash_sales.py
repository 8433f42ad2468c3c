"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — demo data.

Three campaigns on real SKUs (the demo's "now" is today's local midnight): one running all day today
(started at 23:00 yesterday, two items, some sold through real checkouts and sandbox payments, one
order still unpaid), one scheduled for 20:00–21:00 tonight, and one that ran last evening and sold out. Orders go through checkout at past moments (frozen clock), so the figures are
the real ones.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.demo import DemoContext
from siyu.core.errors import AppError
from siyu.merchants import service as merchants
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest
from siyu.payments import service as payments
from siyu.promotions.service import flash_sales as service

HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
ADDRESS = {"name": "林晓", "phone": "13800003333", "province": "江苏省", "city": "南京市", "district": "鼓楼区",
           "detail": "中山路 18 号"}


def _buy(session: Session, ctx: DemoContext, *, customer_id: int, sku_id: int, quantity: int, flash_sale_id: int,
         at: dt.datetime, pay: bool) -> None:
    """One flash order at `at` through checkout, paid in the sandbox when `pay`; a refusal is skipped."""
    actor = Principal(merchant_id=ctx.merchant_id, kind="customer", subject_id=customer_id)
    request = CheckoutRequest.model_validate({
        "items": [{"sku_id": sku_id, "quantity": quantity}], "fulfilment": {"type": "delivery", "address": ADDRESS},
        "promotion": {"kind": "flash_sale", "campaign_id": flash_sale_id}})
    merchant = merchants.get_merchant(session, ctx.merchant_id)
    with clock.frozen(at):
        try:
            with session.begin_nested():
                order = orders.create_order(session, actor=actor, request=request)
                if pay:
                    start = orders.pay_order(session, order.id, actor=actor, method="sandbox")
                    payments.sandbox_confirm(session, merchant=merchant, payment_id=start.payment_id,
                                             customer_id=customer_id)
                    orders.record_payment(session, merchant_id=ctx.merchant_id, order_id=order.id,
                                          payment_id=start.payment_id, amount_cents=order.payable_cents, paid_at=at)
                    service.mark_paid(session, merchant_id=ctx.merchant_id, order_id=order.id)
        except AppError:
            return


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
    customer_ids = list(ctx.data.get("customer_ids") or [])
    on_sale = list(ctx.data.get("on_sale_skus") or [])
    if ctx.admin is None or len(customer_ids) < 20 or len(on_sale) < 8:
        return
    stock = catalog.stock_of(session, merchant_id=ctx.merchant_id, sku_ids=[s["sku_id"] for s in on_sale])
    # Mid-priced SKUs with stock to spare, one per product (the dearest ones are the bargains').
    seen: set[int] = set()
    candidates = []
    for s in sorted(on_sale, key=lambda s: (-s["price_cents"], s["sku_id"])):
        if stock.get(s["sku_id"], 0) >= 40 and s["price_cents"] >= 2000 and s["product_id"] not in seen:
            seen.add(s["product_id"])
            candidates.append(s)
    candidates = candidates[2:6] if len(candidates) >= 6 else candidates[:4]
    if len(candidates) < 4:
        return
    # Order numbers and payment ids come from the demo's seeded generator (core.ids, set by the seeder).
    _seed(session, ctx, customer_ids[-20:], candidates)


def _flash_price(price_cents: int, percent: int) -> int:
    """A round flash price: `percent` of the normal price, to the yuan below, at least ¥1."""
    return max(100, price_cents * percent // 100 // 100 * 100 - 10)


def _seed(session: Session, ctx: DemoContext, people: list[int], skus: list[dict]) -> None:
    now, admin = ctx.now, ctx.admin
    assert admin is not None
    a, b, c, d = skus
    ids = {}

    # Last evening's (20:00–22:00): 12 units, sold out, all paid.
    yesterday = now - 4 * HOUR
    with clock.frozen(yesterday - 2 * HOUR):
        ended = service.create_flash_sale(
            session, actor=admin, title="昨日秒杀 · 爆款直降", starts_at=yesterday, ends_at=yesterday + 2 * HOUR,
            description="每人限购 2 件，售完即止",
            items=[service.FlashItemIn(sku_id=c["sku_id"], flash_price_cents=_flash_price(c["price_cents"], 50),
                                       allocation=12, per_customer_limit=2)])
        service.schedule(session, ended.id, actor=admin)
    for n, customer_id in enumerate(people[:8]):
        _buy(session, ctx, customer_id=customer_id, sku_id=c["sku_id"], quantity=2 if n % 2 == 0 else 1,
             flash_sale_id=ended.id, at=yesterday + (3 + 4 * n) * MINUTE, pay=True)
    ids["ended"] = ended.id

    # Running: 23:00 yesterday to 23:59 today; some sold, one order still unpaid.
    with clock.frozen(now - 3 * HOUR):
        running = service.create_flash_sale(
            session, actor=admin, title="限时秒杀 · 今日特价", starts_at=now - HOUR, ends_at=now + 24 * HOUR - MINUTE,
            description="今日限量，先到先得", allow_coupons=False, allow_member_discount=False,
            items=[service.FlashItemIn(sku_id=a["sku_id"], flash_price_cents=_flash_price(a["price_cents"], 60),
                                       allocation=30, per_customer_limit=2),
                   service.FlashItemIn(sku_id=b["sku_id"], flash_price_cents=_flash_price(b["price_cents"], 70),
                                       allocation=20, per_customer_limit=3)])
        service.schedule(session, running.id, actor=admin)
    for n, customer_id in enumerate(people[8:18]):
        sku = a if n % 3 else b
        _buy(session, ctx, customer_id=customer_id, sku_id=sku["sku_id"], quantity=1 + ctx.rng.randrange(2),
             flash_sale_id=running.id, at=now - HOUR + (5 + 5 * n) * MINUTE, pay=n != 9)
    ids["running"] = running.id

    # Tonight 20:00–21:00 (the countdown).
    with clock.frozen(now - HOUR):
        later = service.create_flash_sale(
            session, actor=admin, title="晚场秒杀 · 准点开抢", starts_at=now + 20 * HOUR, ends_at=now + 21 * HOUR,
            description="准点开抢，设好提醒", allow_coupons=True,
            items=[service.FlashItemIn(sku_id=d["sku_id"], flash_price_cents=_flash_price(d["price_cents"], 55),
                                       allocation=50, per_customer_limit=1)])
        service.schedule(session, later.id, actor=admin)
    ids["later"] = later.id

    # The clock's work: yesterday's ended, today's running.
    service.advance(session, now)
    ctx.data["flash_sale_ids"] = ids
