"""promotions: interactive pop-ups (互动营销) — demo data.

Four live rules: a welcome link for new visitors on the home page, a new-customer coupon, a win-back coupon
for customers dormant for 60 days, and a weekly pick for returning customers on product pages. Two weeks
of impressions, closes, clicks, claims and conversions by demo visitors and customers.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.demo import DemoContext
from siyu.core.errors import AppError
from siyu.merchants import service as merchants
from siyu.promotions.demo.payment_offers import recent_paid_orders
from siyu.promotions.service import coupons as coupon_service
from siyu.promotions.service import popups as service

DAY = dt.timedelta(days=1)


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
    customer_ids = list(ctx.data.get("customer_ids") or [])
    if not ctx.merchant_id or ctx.admin is None or not customer_ids:
        return
    rng, now, admin = ctx.rng, ctx.now, ctx.admin
    slug = merchants.get_merchant(session, ctx.merchant_id).slug
    products = list(ctx.data.get("on_sale_product_ids") or [])
    start = now - 15 * DAY
    with clock.frozen(start):
        def template(name: str, amount: int, threshold: int) -> int:
            return coupon_service.create_template(session, actor=admin, publish=True, name=name, kind="threshold",
                                                  amount_cents=amount, threshold_cents=threshold,
                                                  validity="relative", valid_days=14, per_customer_limit=1,
                                                  channels=["campaign"]).id
        newcomer = template("新人专享 满 59 减 15", 1500, 5900)
        winback = template("老友回归 满 99 减 20", 2000, 9900)
        rules = [
            service.PopupRuleIn(name="新访客欢迎", audience="new_visitor", content_kind="link", priority=10,
                                title="欢迎来到示例品牌", body="注册即领新人券，首单立减 15 元", pages="home",
                                link_url=f"/shop/{slug}/login", cap_per_day=1, cap_total=3, starts_at=start,
                                ends_at=now + 30 * DAY),
            service.PopupRuleIn(name="新客领券", audience="new_customer", content_kind="coupon", priority=20,
                                template_id=newcomer, title="新人券已备好", body="满 59 减 15，14 天内有效",
                                pages="all", cap_per_day=1, cap_total=5, starts_at=start, ends_at=now + 30 * DAY),
            service.PopupRuleIn(name="沉睡唤醒", audience="dormant", dormant_days=60, content_kind="coupon",
                                priority=30, template_id=winback, title="好久不见，送你一张券",
                                body="满 99 减 20", pages="home", cap_per_day=1, cap_total=3, starts_at=start,
                                ends_at=now + 30 * DAY),
            service.PopupRuleIn(name="老客本周推荐", audience="returning", content_kind="link", priority=40,
                                title="本周好物推荐", pages="product",
                                link_url=f"/shop/{slug}/p/{products[-1]}" if products else f"/shop/{slug}/",
                                cap_per_day=1, cap_total=2, starts_at=start, ends_at=now + 30 * DAY),
        ]
        rows = [service.create_rule(session, actor=admin, data=r) for r in rules]
        for row in rows:
            service.change_status(session, row.id, actor=admin, action="publish")
    # Two weeks of page views: anonymous visitors on the home page and customers around the shop.
    visitors = [f"demo-visitor-{i:04d}" for i in range(ctx.count(60))]
    viewers = rng.sample(customer_ids, min(len(customer_ids), ctx.count(80)))
    people: list[tuple[int | None, str | None]] = [(None, v) for v in visitors] + [(c, None) for c in viewers]
    for customer_id, visitor_id in people:
        at = (now - dt.timedelta(minutes=rng.randint(10, 14 * 24 * 60))).replace(microsecond=0)
        with clock.frozen(at):
            rule = service.next_popup(session, merchant_id=ctx.merchant_id, customer_id=customer_id,
                                      visitor_id=visitor_id, page=rng.choice(("home", "home", "product")),
                                      rules=rows)
            if rule is None:
                continue
            roll = rng.random()
            if roll < 0.35:
                service.dismiss(session, merchant_id=ctx.merchant_id, rule_id=rule.id, customer_id=customer_id,
                                visitor_id=visitor_id)
            elif rule.content_kind == "link" and roll < 0.6:
                service.click(session, merchant_id=ctx.merchant_id, rule_id=rule.id, customer_id=customer_id,
                              visitor_id=visitor_id)
            elif rule.content_kind == "coupon" and customer_id and roll < 0.7:
                with contextlib.suppress(AppError):
                    service.claim(session, actor=Principal(merchant_id=ctx.merchant_id, kind="customer",
                                                           subject_id=customer_id), rule_id=rule.id)
    # Orders paid since then convert what was seen (the order.paid handler's work, run in place).
    for order in recent_paid_orders(session, ctx, days=14, limit=150):
        service.record_conversion(session, merchant_id=ctx.merchant_id, customer_id=order.customer_id,
                                  order_id=order.id, paid_at=order.paid_at)
    ctx.data["popup_rule_ids"] = [r.id for r in rows]
