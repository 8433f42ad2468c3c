"""membership: demo tiers, rules, a paid plan, a points mall, and members across tiers with growth
and points ledgers. Bulk inserts for the many, the services for a few rich histories (the first
demo customer, `demo-openid-<merchant>-000000`, is a gold member). Deterministic and fast."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.demo import DemoContext
from siyu.customers import service as customers
from siyu.ledger import service as ledger
from siyu.membership.models.members import GrowthEntry, Member, MembershipConfig, TierChange
from siyu.membership.models.points import PointsLot
from siyu.membership.service import members as members_service
from siyu.membership.service import points, points_mall, tiers

TIERS = [  # name, growth, discount bps, points multiplier bps, free shipping, birthday points
    ("普通会员", 0, 0, 10_000, False, 50),
    ("银卡会员", 500, 200, 12_000, False, 100),
    ("金卡会员", 2000, 500, 15_000, True, 300),
    ("黑钻会员", 8000, 1000, 20_000, True, 1000),
]


def seed(session: Session, ctx: DemoContext) -> None:
    if ctx.admin is None:
        return
    rng, merchant_id, now = ctx.rng, ctx.merchant_id, ctx.now
    with clock.frozen(now - dt.timedelta(days=366)):
        session.add(MembershipConfig(merchant_id=merchant_id, rules={"evaluation_days": 365, "grace_days": 30}))
        tier_rows = [tiers.create_tier(session, actor=ctx.admin, name=name, growth_threshold=growth, discount_bps=bps,
                                       points_multiplier_bps=mult, free_shipping=free, birthday_points=bday)
                     for name, growth, bps, mult, free, bday in TIERS]
        tiers.create_plan(session, actor=ctx.admin, name="金卡月卡", tier_id=tier_rows[2].id, days=30, price_cents=1990)
        tiers.create_plan(session, actor=ctx.admin, name="金卡年卡", tier_id=tier_rows[2].id, days=365,
                          price_cents=16800)
        # Four different products, the cheaper ones first: all points, or points plus a little cash.
        first_sku: dict[int, dict[str, Any]] = {}
        for sku in ctx.data.get("on_sale_skus") or []:
            first_sku.setdefault(sku["product_id"], sku)
        for n, sku in enumerate(sorted(first_sku.values(), key=lambda x: (x["price_cents"], x["sku_id"]))[:4]):
            points_mall.save_item(session, actor=ctx.admin, sku_id=sku["sku_id"],
                                  points=max(300, sku["price_cents"] // 100 * 50 // 10 * 10 // (2 if n % 2 else 1)),
                                  cash_cents=sku["price_cents"] // 4 if n % 2 else 0)

    customer_ids = list(ctx.data.get("customer_ids") or [])
    if not customer_ids:
        return
    chosen = [customer_ids[0], *sorted(rng.sample(customer_ids[1:], min(len(customer_ids) - 1, ctx.count(800))))]
    system = system_principal(merchant_id)
    member_rows: list[dict[str, Any]] = []
    growths: list[int] = []
    for i, customer_id in enumerate(chosen):
        c = customers.get_customer(session, customer_id, actor=system)
        activated = max(c.created_at, now - dt.timedelta(days=rng.randint(5, 360)))
        growth = 2600 if i == 0 else int(rng.paretovariate(1.3) * 150) if rng.random() < 0.8 else rng.randint(0, 80)
        growths.append(growth)
        tier = tiers.tier_for_growth(tier_rows, growth)
        member_rows.append({
            "merchant_id": merchant_id, "customer_id": customer_id,
            "card_no": members_service.card_number(merchant_id, customer_id), "phone": c.phone or f"1990000{i:04d}",
            "name": c.name or c.nickname, "birthday": c.birthday, "growth": growth,
            "tier_id": tier.id if tier else None, "tier_since": activated,
            "review_at": activated + dt.timedelta(days=365), "grace_until": None, "paid_tier_id": None,
            "paid_until": None, "last_checkin_on": None, "checkin_streak": 0,
            "profile_rewarded": False, "birthday_gift_year": None, "activated_at": activated,
        })
    member_ids = list(session.scalars(insert(Member).returning(Member.id, sort_by_parameter_order=True), member_rows))
    growth_rows, change_rows, lot_rows, opening = [], [], [], {}
    for member_id, row, growth in zip(member_ids, member_rows, growths, strict=True):
        if growth:
            at = row["activated_at"] + (now - row["activated_at"]) / 2
            growth_rows.append({"merchant_id": merchant_id, "member_id": member_id, "delta": growth, "reason": "order",
                                "idempotency_key": f"demo:growth:{member_id}", "ref_type": None, "ref_id": None,
                                "created_at": at})
        change_rows.append({"merchant_id": merchant_id, "member_id": member_id, "from_tier_id": None,
                            "to_tier_id": row["tier_id"], "kind": "upgrade", "note": "demo",
                            "created_at": row["activated_at"]})
        earned = growth + rng.choice((0, 50, 100, 200))
        if earned:
            at = row["activated_at"] + dt.timedelta(days=1)
            opening[row["customer_id"]] = earned
            lot_rows.append({"merchant_id": merchant_id, "customer_id": row["customer_id"], "amount": earned,
                             "remaining": earned, "reason": "order_earn", "entry_key": f"points-demo:{row['customer_id']}",
                             "ref_type": "customer", "ref_id": row["customer_id"], "earned_at": at,
                             "expires_at": points.expires_at_for(at, 1), "expired_at": None, "expired_points": 0})
    for model, batch in ((GrowthEntry, growth_rows), (TierChange, change_rows), (PointsLot, lot_rows)):
        if batch:
            session.execute(insert(model), batch)
    ledger.open_accounts(session, merchant_id=merchant_id, kind=points.KIND, owner_type=points.OWNER, opening=opening,
                         reason="order_earn", key_prefix="points-demo", note="历史订单积分", actor=None)
    session.flush()

    # A few richer ledgers through the services: check-ins, spending, a staff adjustment, the gold demo member.
    for n, customer_id in enumerate(chosen[:12]):
        member = members_service.member_of(session, merchant_id=merchant_id, customer_id=customer_id)
        assert member is not None
        for day in range(rng.randint(2, 6)):
            at = now - dt.timedelta(days=day + 1, hours=-2)
            with clock.frozen(at):
                today = clock.today_local()
                key = f"member:{member.id}:checkin:{today.isoformat()}"
                points.earn(session, merchant_id=merchant_id, customer_id=customer_id, points=5, reason="checkin",
                            key=key, ref_type="member", ref_id=member.id, note=f"Check-in {today.isoformat()}")
                tiers.add_growth(session, member, delta=1, reason="checkin", key=key)
        with clock.frozen(now - dt.timedelta(days=rng.randint(1, 20))):
            have = points.balance(session, merchant_id=merchant_id, customer_id=customer_id)
            if have > 100:
                points.spend(session, merchant_id=merchant_id, customer_id=customer_id, points=have // 3,
                             reason="order_points", key=f"demo:spend:{customer_id}", note="门店消费抵现")
            if n % 4 == 0:
                points.adjust(session, actor=ctx.admin, customer_id=customer_id, delta=200, reason="会员日活动赠送")
    session.flush()
    ctx.data["member_customer_ids"] = chosen
