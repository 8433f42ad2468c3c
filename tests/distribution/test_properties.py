"""Property: over random sequences of orders, partial refunds, completions, clock jumps and
withdrawals, every distributor's pending + settled + withdrawing + withdrawn + reversed (- owed)
equals what the rules give, nothing is ever negative, and the ledger sums to the balances."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import AppError
from siyu.core.money import apply_bps
from siyu.distribution import service
from siyu.ledger.models import LedgerAccount
from siyu.orders import service as orders
from siyu.orders.service.common import lock_order
from tests.factories.customers import make_customer
from tests.factories.distribution import make_distributor, make_rule, refer, run_events
from tests.factories.merchants import make_merchant
from tests.factories.orders import customer_principal, make_sku, pay, place_order

T0 = dt.datetime(2026, 5, 1, 2, 0, tzinfo=dt.UTC)

buy = st.tuples(st.just("buy"), st.sampled_from([0, 1, 2, None]),
                st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4)), min_size=1, max_size=2, unique_by=lambda x: x[0]))
refund = st.tuples(st.just("refund"), st.integers(0, 20), st.integers(0, 1), st.integers(1, 3))
complete = st.tuples(st.just("complete"), st.integers(0, 20))
jump = st.tuples(st.just("jump"), st.integers(3, 10))
# The amount as a percentage of what is withdrawable then (over 100: more than there is).
withdraw = st.tuples(st.just("withdraw"), st.integers(0, 2), st.integers(1, 120), st.booleans())
# Orders first, so that later steps have something to refund, complete, settle and withdraw.
steps = st.tuples(st.lists(buy, min_size=1, max_size=4),
                  st.lists(st.one_of(buy, refund, complete, complete, jump, jump, withdraw, withdraw), min_size=2,
                           max_size=16)).map(lambda t: t[0] + t[1])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(ops=steps, prices=st.lists(st.integers(1, 20_000), min_size=3, max_size=3),
       l1_bps=st.integers(0, 3000), l2_fixed=st.integers(0, 800))
def test_commission_accounts_always_balance(db: Session, ops, prices, l1_bps, l2_fixed) -> None:
    now = T0
    with clock.frozen(now):
        merchant = make_merchant(db)
        system = system_principal(merchant.id)
        top = make_distributor(db, merchant=merchant)
        mid = make_distributor(db, merchant=merchant, upline=top)
        low = make_distributor(db, merchant=merchant, upline=mid)
        chain = [top, mid, low]
        make_rule(db, merchant=merchant, level=1, kind="bps", value=l1_bps)
        make_rule(db, merchant=merchant, level=2, kind="fixed", value=l2_fixed)
        service.update_programme(db, actor=system, min_withdrawal_cents=1, daily_withdrawal_limit_cents=10**9)
        skus = [make_sku(db, merchant=merchant, price_cents=p, stock=10_000) for p in prices]
    upline = {top.id: None, mid.id: top, low.id: mid}
    placed: list[tuple[object, object, list[tuple[int, object | None]]]] = []  # (order, customer, earners)
    gross = {d.id: 0 for d in chain}
    withdrawn = {d.id: 0 for d in chain}

    for op in ops:
        with clock.frozen(now):
            if op[0] == "buy":
                _, who, items = op
                customer = make_customer(db, merchant=merchant)
                order = place_order(db, customer=customer, items=[(skus[i], q) for i, q in items])
                referrer = chain[who] if who is not None else None
                refer(db, order, referrer)
                pay(db, order)
                run_events(db)
                earners = [] if referrer is None else [(1, referrer), (2, upline[referrer.id])]
                for line in orders.order_lines(db, order.id):
                    for level, d in earners:
                        if d is None:
                            continue
                        gross[d.id] += apply_bps(line.paid_cents, l1_bps) if level == 1 \
                            else min(l2_fixed * line.quantity, line.paid_cents)
                placed.append((order, customer, earners))
            elif op[0] == "refund" and placed:
                order, customer, _ = placed[op[1] % len(placed)]
                lines = orders.order_lines(db, order.id)
                line = lines[op[2] % len(lines)]
                try:
                    with db.begin_nested():
                        r = orders.request_refund(db, order.id, actor=customer_principal(customer), reason="测试",
                                                  lines=[(line.id, op[3])])
                        orders.approve_refund(db, r.id, actor=system)
                except AppError:
                    pass
                run_events(db)
            elif op[0] == "complete" and placed:
                order, _, _ = placed[op[1] % len(placed)]
                try:
                    with db.begin_nested():
                        locked = lock_order(db, order.id)
                        if locked.status == "paid":
                            orders.ship_order(db, order.id, actor=system, carrier="顺丰", tracking_no="SF0001")
                        locked = lock_order(db, order.id)
                        orders.change_status(db, locked, "completed", actor=None)
                except AppError:
                    pass
                run_events(db)
            elif op[0] == "jump":
                now = now + dt.timedelta(days=op[1])
                with clock.frozen(now):
                    if service.settle_due(db, now):
                        event("commissions settled")
            elif op[0] == "withdraw":
                _, who, percent, approve = op
                d = chain[who]
                from siyu.customers.models import Customer

                settled = service.accounts.balances(db, merchant_id=merchant.id, owner_type="distributor",
                                                    owner_id=d.id).settled_cents
                amount = max(1, settled * percent // 100)

                try:
                    with db.begin_nested():
                        w = service.request_withdrawal(db, actor=customer_principal(db.get(Customer, d.customer_id)),
                                                       amount_cents=amount)
                except AppError:
                    continue
                event("a withdrawal went through")
                if approve:
                    service.approve(db, actor=system, withdrawal_id=w.id)
                    withdrawn[d.id] += amount
                else:
                    service.reject(db, actor=system, withdrawal_id=w.id, reason="不符合要求")

        # then, after every step
        for d in chain:
            b = service.accounts.balances(db, merchant_id=merchant.id, owner_type="distributor", owner_id=d.id)
            assert b.earned_cents == gross[d.id] == service.rule_total(
                db, merchant_id=merchant.id, beneficiary_type="distributor", beneficiary_id=d.id)
            assert b.withdrawn_cents == withdrawn[d.id] and b.withdrawing_cents == 0
            rows = service.list_commissions(db, merchant_id=merchant.id, filters=service.CommissionFilter(
                beneficiary_type="distributor", beneficiary_id=d.id), limit=100).items
            assert b.reversed_cents == sum(r.reversed_cents for r in rows)
            assert b.pending_cents == sum(r.amount_cents - r.reversed_cents for r in rows if r.status == "pending")
        assert min(db.scalars(select(LedgerAccount.balance).where(LedgerAccount.merchant_id == merchant.id)),
                   default=0) >= 0
        assert service.accounts.verify(db, merchant_id=merchant.id) == []
