"""Demo data for distribution: a programme with rules (and a draft to simulate), distributors in
two-level teams drawn from the customers attribution bound as referrers, a year of commissions on
their customers' orders (reversed where refunded, settled where the after-sales window has closed),
and withdrawals paid, rejected and waiting."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from siyu.attribution.service import ownership
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.demo import DemoContext
from siyu.core.errors import AppError
from siyu.distribution import service
from siyu.distribution.models import Commission, Distributor, UplineChange
from siyu.distribution.service.distributors import INVITE_ALPHABET
from siyu.orders import service as orders

PAID = ("paid", "shipped", "ready_for_pickup", "completed", "refunding", "refunded")


def _referrers(session: Session, ctx: DemoContext) -> Counter[int]:
    """How many customers each referrer brought (attribution's bindings)."""
    counts: Counter[int] = Counter()
    cursor = None
    while True:
        page = ownership.list_bindings(session, actor=ctx.admin, kind="referrer", cursor=cursor, limit=100)
        counts.update(b.referrer_customer_id for b in page.items if b.referrer_customer_id)
        if page.next_cursor is None:
            return counts
        cursor = page.next_cursor


def _paid_orders(session: Session, ctx: DemoContext) -> list[Any]:
    actor = ctx.admin
    out, cursor = [], None
    while True:
        page = orders.list_orders(session, actor=actor, cursor=cursor, limit=100)
        out.extend(o for o in page.items if o.status in PAID and o.paid_at is not None
                   and getattr(o, "kind", "goods") == "goods")
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def seed(session: Session, ctx: DemoContext) -> None:
    if not ctx.merchant_id or ctx.admin is None:
        return
    mid, admin, rng, now = ctx.merchant_id, ctx.admin, ctx.rng, ctx.now
    programme = service.update_programme(session, actor=admin, enrolment_mode="anyone", levels=2,
                                         min_withdrawal_cents=1000, daily_withdrawal_limit_cents=200_000)
    codes = [g["code"] for g in service.grades(programme)]
    rules: list[dict[str, Any]] = [
        {"scope": "default", "level": 1, "kind": "bps", "value": 1000},
        {"scope": "default", "level": 2, "kind": "bps", "value": 300},
        {"scope": "grade", "grade": "senior", "level": 1, "kind": "bps", "value": 1200},
    ]
    categories = list(ctx.data.get("category_ids") or [])
    if categories:
        rules.append({"scope": "category", "scope_id": categories[0], "level": 1, "kind": "bps", "value": 1500})
    for r in rules:
        service.create_rule(session, actor=admin, data=r, grade_codes=codes)
    # The draft to simulate: level 1 down to 8%, and guides of the first store paid 2% (导购提成).
    service.copy_active_to_draft(session, actor=admin)
    service.create_rule(session, actor=admin, status="draft", grade_codes=codes,
                        data={"scope": "default", "level": 1, "kind": "bps", "value": 800})
    if ctx.guide_store:
        service.create_rule(session, actor=admin, status="draft", grade_codes=codes, data={
            "audience": "guide", "scope": "store", "scope_id": sorted(set(ctx.guide_store.values()))[0], "level": 1,
            "kind": "bps", "value": 200})

    # Distributors: the customers who brought the most others (else the first customers), in teams.
    counts = _referrers(session, ctx)
    people = [cid for cid, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:ctx.count(60)]
    if len(people) < 4:
        people = list(ctx.data.get("customer_ids") or [])[:max(4, ctx.count(40))]
    if not people:
        return
    joined_base = now - dt.timedelta(days=360)
    rows: list[Distributor] = []
    for i, cid in enumerate(people):
        customer_name = f"分销员{i + 1}"
        joined = joined_base + dt.timedelta(days=i * 3)
        code = "".join(rng.choice(INVITE_ALPHABET) for _ in range(8))
        rows.append(Distributor(merchant_id=mid, customer_id=cid, status="active", grade=codes[0],
                                invite_code=code, nickname=customer_name, applied_at=joined, joined_at=joined,
                                updated_at=joined))
    session.add_all(rows)
    session.flush()
    tops = rows[::4]
    for i, d in enumerate(rows):
        if d in tops:
            continue
        upline = tops[i % len(tops)]
        d.upline_id = upline.id
        session.add(UplineChange(merchant_id=mid, distributor_id=d.id, old_upline_id=None, new_upline_id=upline.id,
                                 actor_type="customer", actor_id=d.customer_id, created_at=d.joined_at))
    for top in tops:
        top.team_size = sum(1 for d in rows if d.upline_id == top.id)
    # A few applications to review, and one frozen distributor.
    if len(rows) > 8:
        rows[-1].status, rows[-1].joined_at = "pending", None
        rows[-2].status = "frozen"
    session.flush()

    # A year of commissions on the orders of the customers each distributor brought.
    ctx_ = service.Context.load(session, mid)
    ctx_.preload(session, mid)
    by_customer = {d.customer_id: d for d in rows}
    referrer_of = {}
    for cid in by_customer:
        for b in ownership.bound_customers(session, merchant_id=mid, referrer_customer_id=cid, limit=1000).items:
            referrer_of[b.customer_id] = cid
    paid = [o for o in _paid_orders(session, ctx) if o.customer_id in referrer_of]
    if not paid:
        # No bindings in this demo: let the distributors' first customers be some buyers.
        buyers = sorted({o.customer_id for o in _paid_orders(session, ctx)})[:ctx.count(300)]
        referrer_of = {c: people[i % len(people)] for i, c in enumerate(buyers)}
        paid = [o for o in _paid_orders(session, ctx) if o.customer_id in referrer_of]
    lines = orders.lines_of(session, [o.id for o in paid])
    facts = [service.OrderFacts(
        merchant_id=mid, order_id=o.id, order_no=o.order_no, customer_id=o.customer_id, store_id=o.store_id,
        owner_id=o.owner_id, attribution={**(o.attribution or {}), "referrer_customer_id": referrer_of[o.customer_id]},
        lines=tuple(service.LineFacts(id=x.id, product_id=x.product_id, category_id=x.category_id, title=x.title,
                                      quantity=x.quantity, paid_cents=x.paid_cents,
                                      refunded_quantity=x.refunded_quantity) for x in lines.get(o.id, [])))
        for o in paid]
    for start in range(0, len(facts), 500):
        service.accrue(session, ctx_, facts[start:start + 500])
    # Commission rows dated by their orders' payment, and settling after each completed order's window.
    days = orders.after_sales_days(session, mid)
    paid_at = {o.id: o.paid_at for o in paid}
    session.flush()
    table = Commission.__table__
    for o in paid:
        closes = o.completed_at + dt.timedelta(days=days) if o.completed_at else None
        session.execute(update(table).where(table.c.merchant_id == mid, table.c.order_id == o.id)
                        .values(created_at=paid_at[o.id], settle_after=closes if o.status == "completed" else None))
    while service.settle_due(session, now, merchant_id=mid, limit=5000):
        pass

    # Withdrawals: most paid, one rejected, one waiting for review.
    balances = service.accounts.balances_of(session, merchant_id=mid, owner_type="distributor",
                                            owner_ids=[d.id for d in rows])
    rich = [d for d in rows if d.status == "active" and balances[d.id].settled_cents >= 2000][:ctx.count(12)]
    for n, d in enumerate(rich):
        principal = Principal(merchant_id=mid, kind="customer", subject_id=d.customer_id, name=d.nickname)
        amount = balances[d.id].settled_cents // 2
        amount = min(amount, 200_000)
        with clock.frozen(now - dt.timedelta(days=30 - n)):
            try:
                w = service.request_withdrawal(session, actor=principal, amount_cents=amount)
            except AppError:
                continue
            if n % 5 == 3:
                service.reject(session, actor=admin, withdrawal_id=w.id, reason="收款信息不完整，请补充后再申请")
            elif n % 5 != 4:
                service.approve(session, actor=admin, withdrawal_id=w.id)
    session.flush()
    ctx.data["distributor_ids"] = [d.id for d in rows]
