"""promotions: coupons — demo data.

Live templates of every kind in the coupon centre (满减, 无门槛, 折扣 with a cap, free shipping, an
exchange coupon for one product, a category coupon), one ended campaign and one draft; demo customers
claimed some over the last days, and a few used theirs on orders paid in the demo (so the console
shows claimed, used and the GMV of the orders using them). Deterministic by `ctx.rng` and `ctx.now`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.demo import DemoContext
from siyu.core.errors import AppError
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest
from siyu.promotions.service import coupons as service

DAY = dt.timedelta(days=1)
ADDRESS = {"name": "李雷", "phone": "13800001111", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路 88 号"}


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
    customer_ids = list(ctx.data.get("customer_ids") or [])
    skus = list(ctx.data.get("on_sale_skus") or [])
    if not ctx.merchant_id or ctx.admin is None or len(customer_ids) < 10 or not skus:
        return
    rng, now, admin = ctx.rng, ctx.now, ctx.admin
    everywhere = ["centre", "guide", "payment", "campaign", "segment"]
    exchange_sku = min(skus, key=lambda s: (s["price_cents"], s["sku_id"]))
    categories = list(ctx.data.get("category_ids") or [])
    specs: list[dict] = [
        {"name": "满199减30", "kind": "threshold", "threshold_cents": 19_900, "amount_cents": 3000,
         "validity": "fixed", "starts_at": now - 7 * DAY, "ends_at": now + 23 * DAY, "total_stock": 1000,
         "per_customer_limit": 2, "channels": everywhere, "description": "全场满 199 元减 30 元"},
        {"name": "新人无门槛 10 元", "kind": "fixed", "amount_cents": 1000, "validity": "relative", "valid_days": 7,
         "total_stock": 500, "per_customer_limit": 1, "channels": everywhere, "description": "领取后 7 天内有效"},
        {"name": "全场 85 折", "kind": "percent", "percent_bps": 1500, "cap_cents": 5000, "validity": "fixed",
         "starts_at": now - 3 * DAY, "ends_at": now + 11 * DAY, "total_stock": 300, "per_customer_limit": 1,
         "channels": ["centre", "guide"], "description": "最多优惠 50 元"},
        {"name": "包邮券", "kind": "free_shipping", "validity": "relative", "valid_days": 15, "total_stock": None,
         "per_customer_limit": 3, "channels": ["centre", "payment"]},
        {"name": "好礼兑换券", "kind": "exchange", "exchange_sku_id": exchange_sku["sku_id"], "validity": "relative",
         "valid_days": 30, "total_stock": 50, "per_customer_limit": 1, "channels": ["guide", "campaign"],
         "description": "到店或下单兑换一件小样"},
    ]
    if categories:
        specs.append({"name": "分类专享满 99 减 15", "kind": "threshold", "threshold_cents": 9900, "amount_cents": 1500,
                      "scope": "categories", "scope_category_ids": categories[:2], "validity": "relative",
                      "valid_days": 10, "total_stock": 200, "per_customer_limit": 1, "channels": ["centre"]})
    templates = []
    with clock.frozen(now - 7 * DAY):
        for spec in specs:
            templates.append(service.create_template(session, actor=admin, publish=True, **spec))
        ended = service.create_template(session, actor=admin, publish=True, name="双十一 满 300 减 50",
                                        kind="threshold", threshold_cents=30_000, amount_cents=5000,
                                        validity="relative", valid_days=3, total_stock=100, channels=["centre"])
        service.create_template(session, actor=admin, name="会员日 9 折（草稿）", kind="percent", percent_bps=1000,
                                cap_cents=3000, validity="relative", valid_days=3, channels=["centre"])
    with clock.frozen(now - DAY):
        service.end_template(session, actor=admin, template_id=ended.id)
    service.expire_due(session, now)  # campaigns whose start has come are running now
    # Claims spread over the last week; the guide channel for the exchange coupon.
    people = rng.sample(customer_ids, min(len(customer_ids), 40))
    claimed: list[tuple[int, int]] = []  # (customer, coupon)
    for i, customer_id in enumerate(people):
        for template in rng.sample(templates, rng.randint(1, 3)):
            channel = "guide" if "centre" not in template.channels else "centre"
            with clock.frozen(now - dt.timedelta(hours=rng.randint(2, 6 * 24))):
                try:
                    coupon = service.issue_coupon(session, merchant_id=ctx.merchant_id, template_id=template.id,
                                                  customer_id=customer_id, channel=channel,
                                                  actor=admin if channel == "guide" else None)
                except AppError:
                    continue
            if template.kind in ("threshold", "fixed", "percent") and template.scope == "all" and i % 3 == 0:
                claimed.append((customer_id, coupon.id))
    # A few of them used on orders paid in the demo.
    pricey = sorted(skus, key=lambda s: (-s["price_cents"], s["sku_id"]))[:10]
    used = 0
    for customer_id, coupon_id in claimed[:8]:
        sku = rng.choice(pricey)
        actor = Principal(merchant_id=ctx.merchant_id, kind="customer", subject_id=customer_id)
        request = CheckoutRequest.model_validate({"items": [{"sku_id": sku["sku_id"], "quantity": 1}],
                                                  "fulfilment": {"type": "delivery", "address": ADDRESS},
                                                  "coupon_ids": [coupon_id]})
        with clock.frozen(now - dt.timedelta(hours=rng.randint(1, 48))):
            try:
                with session.begin_nested():
                    order = orders.create_order(session, actor=actor, request=request)
                    locked = orders.get_order(session, order.id, actor=system_principal(ctx.merchant_id), lock=True)
                    if locked.status == "pending_payment":
                        orders.apply_payment(session, locked, payment_id=None, amount_cents=locked.payable_cents,
                                             paid_at=clock.now(), actor=None, note="Demo payment.")
                used += 1
            except AppError:  # e.g. the threshold is not met by this item: that buyer skips
                continue
    ctx.data["coupon_template_ids"] = [t.id for t in templates]
    ctx.data["coupons_used"] = used
