"""membership: stored value demo data — recharge plans, and balances with a history for some demo
customers (recharges made at the store counter before they used the shop, a few adjustments).
Deterministic: ctx.rng for choices, ctx.now (frozen clock) for times, fixed idempotency keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.demo import DemoContext
from siyu.ledger import service as ledger
from siyu.membership.models.stored_value import Recharge
from siyu.membership.service import stored_value as service

PLANS = [("充100送5", 10000, 500), ("充500送50", 50000, 5000), ("充1000送150", 100000, 15000),
         ("充2000送400", 200000, 40000)]


def seed(session: Session, ctx: DemoContext) -> None:
    if ctx.admin is None:
        return
    with clock.frozen(ctx.now - dt.timedelta(days=200)):
        plans = [service.create_plan(session, actor=ctx.admin, name=name, price_cents=price, bonus_cents=bonus,
                                     sort=i) for i, (name, price, bonus) in enumerate(PLANS)]
        service.create_plan(session, actor=ctx.admin, name="双十一充300送60", price_cents=30000, bonus_cents=6000,
                            active=False, sort=9)
    customer_ids = list(ctx.data.get("customer_ids") or [])
    chosen = sorted(ctx.rng.sample(customer_ids, min(len(customer_ids), ctx.count(60))))
    for n, customer_id in enumerate(chosen):
        for _ in range(ctx.rng.choice((1, 1, 2, 3))):
            plan = ctx.rng.choice(plans[:3] if ctx.rng.random() < 0.8 else plans)
            at = ctx.now - dt.timedelta(days=ctx.rng.randint(1, 180), minutes=ctx.rng.randint(0, 1439))
            with clock.frozen(at):
                row = Recharge(merchant_id=ctx.merchant_id, customer_id=customer_id, plan_id=plan.id,
                               plan_name=plan.name, order_id=None, principal_cents=plan.price_cents,
                               bonus_cents=plan.bonus_cents, status="credited", created_at=at, credited_at=at)
                session.add(row)
                session.flush()
                for kind, amount, reason in ((service.PRINCIPAL, plan.price_cents, "recharge"),
                                             (service.BONUS, plan.bonus_cents, "recharge_bonus")):
                    account = "principal" if kind == service.PRINCIPAL else "bonus"
                    ledger.post(session, merchant_id=ctx.merchant_id, kind=kind, owner_type=service.OWNER,
                                owner_id=customer_id, delta=amount, reason=reason,
                                idempotency_key=f"sv:recharge:{row.id}:{account}",
                                note=f"{plan.name}（门店充值）", ref_type="recharge", ref_id=row.id)
        if n % 7 == 3:
            with clock.frozen(ctx.now - dt.timedelta(days=ctx.rng.randint(0, 30))):
                service.adjust(session, actor=ctx.admin, customer_id=customer_id, account="bonus",
                               delta_cents=ctx.rng.choice((500, 1000, 2000)), reason="会员日补偿",
                               idempotency_key=f"demo:{customer_id}")
    ctx.data["stored_value_customer_ids"] = chosen
