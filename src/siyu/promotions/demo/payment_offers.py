"""promotions: payment marketing (支付营销) — demo data.

Three live rules by priority: a new customer's first order gets a ¥10 return coupon; an order of ¥300 or more
gets a gift pack of two coupons; everyone else gets a link to a product. The recent paid orders of the
last two weeks were shown their offer when they were paid; some claimed or followed it, and later orders
of the same customers within seven days counted as conversions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.demo import DemoContext
from siyu.core.errors import AppError
from siyu.merchants import service as merchants
from siyu.orders import service as orders
from siyu.promotions.service import coupons as coupon_service
from siyu.promotions.service import payment_offers as service

DAY = dt.timedelta(days=1)
RECENT = 14
MAX_ORDERS = 80


def recent_paid_orders(session: Session, ctx: DemoContext, *, days: int, limit: int) -> list[Any]:
    """The demo's goods orders placed and paid in the last `days` days (at most `limit`, the latest), oldest
    first."""
    system = system_principal(ctx.merchant_id)
    since = clock.local(ctx.now - days * DAY).date()  # type: ignore[union-attr]
    found: list[Any] = []
    cursor = None
    while len(found) < limit:
        page = orders.list_orders(session, actor=system, filters=orders.OrderFilter(created_from=since),
                                  cursor=cursor, limit=100)
        found += [o for o in page.items if o.paid_at is not None and o.kind == "goods"]
        cursor = page.next_cursor
        if cursor is None:
            break
    return sorted(found[:limit], key=lambda o: (o.paid_at, o.id))


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
    if not ctx.merchant_id or ctx.admin is None:
        return
    rng, now, admin = ctx.rng, ctx.now, ctx.admin
    slug = merchants.get_merchant(session, ctx.merchant_id).slug
    products = list(ctx.data.get("on_sale_product_ids") or [])
    start = now - 30 * DAY
    with clock.frozen(start):
        def template(name: str, **fields: object) -> int:
            return coupon_service.create_template(session, actor=admin, publish=True, name=name, validity="relative",
                                                  valid_days=30, per_customer_limit=20, channels=["payment"],
                                                  **fields).id
        back = template("支付返券 10 元", kind="threshold", amount_cents=1000, threshold_cents=9900)
        pack_a = template("大单礼包·满 200 减 30", kind="threshold", amount_cents=3000, threshold_cents=20000)
        pack_b = template("大单礼包·9 折券", kind="percent", percent_bps=1000, cap_cents=5000)
        rules = [
            service.OfferRuleIn(name="新客首单返券", offer_kind="coupon", priority=10, customer_type="new",
                                template_ids=[back], title="首单支付成功，送你 10 元回购券", starts_at=start,
                                ends_at=now + 30 * DAY),
            service.OfferRuleIn(name="大单礼包", offer_kind="gift_pack", priority=20, min_paid_cents=30000,
                                template_ids=[pack_a, pack_b], title="感谢大单支持，礼包请收下", starts_at=start,
                                ends_at=now + 30 * DAY),
            service.OfferRuleIn(name="支付后推荐新品", offer_kind="link", priority=90,
                                link_url=f"/shop/{slug}/p/{products[0]}" if products else f"/shop/{slug}/",
                                title="看看本周新品", starts_at=start, ends_at=now + 30 * DAY),
        ]
        rows = [service.create_rule(session, actor=admin, data=r) for r in rules]
        for row in rows:
            service.change_status(session, row.id, actor=admin, action="publish")
    recent = recent_paid_orders(session, ctx, days=RECENT, limit=MAX_ORDERS)
    for order in recent:
        with clock.frozen(order.paid_at + dt.timedelta(minutes=1)):
            service.record_conversion(session, merchant_id=ctx.merchant_id, customer_id=order.customer_id,
                                      order_id=order.id, paid_at=order.paid_at)
            offer = service.show_for_order(session, order=order)
            if offer is None:
                continue
            roll = rng.random()
            if offer.rule.offer_kind != "link" and roll < 0.55:
                customer = Principal(merchant_id=ctx.merchant_id, kind="customer", subject_id=order.customer_id)
                with contextlib.suppress(AppError):
                    service.claim(session, actor=customer, show_id=offer.show.id)
            elif offer.rule.offer_kind == "link" and roll < 0.3:
                service.click(session, merchant_id=ctx.merchant_id, show_id=offer.show.id,
                              customer_id=order.customer_id)
    ctx.data["payment_offer_rule_ids"] = [r.id for r in rows]
