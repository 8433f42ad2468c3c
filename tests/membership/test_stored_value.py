"""Stored value (储值): recharge, spend in proportion, give back, refunds, adjustments — and a
property test over random sequences with clock jumps."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.errors import AppError, Conflict
from siyu.core.models import AuditLog
from siyu.ledger import service as ledger
from siyu.ledger.models import LedgerAccount, LedgerEntry
from siyu.membership.models.stored_value import BalanceUse, Recharge
from siyu.membership.service import stored_value as sv
from siyu.orders.models import Order
from siyu.orders.states import FULFILMENT_LABELS
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, principal_of
from tests.factories.orders import customer_principal

_ids = itertools.count(10_000)


@pytest.fixture(autouse=True)
def _installed() -> None:
    # Other tests (payments) unregister the balance provider; stored value plugs itself back in.
    sv.install()


def setup(db: Session):
    merchant = make_merchant(db)
    admin = principal_of(db, make_staff(db, merchant=merchant))
    customer = make_customer(db, merchant=merchant)
    return merchant, admin, customer


def recharge(db: Session, admin, customer, price: int, bonus: int) -> Recharge:
    plan = sv.create_plan(db, actor=admin, name=f"充{price // 100}送{bonus // 100}", price_cents=price, bonus_cents=bonus)
    row = sv.start_recharge(db, actor=customer_principal(customer), plan_id=plan.id)
    assert sv.credit_recharge(db, merchant_id=customer.merchant_id, order_id=row.order_id) == "credited"
    return row


def bal(db: Session, customer) -> tuple[int, int]:
    b = sv.balance_of(db, merchant_id=customer.merchant_id, customer_id=customer.id)
    return b.principal_cents, b.bonus_cents


def test_recharge_is_a_service_order_and_credits_principal_and_bonus_once(db: Session) -> None:
    # given
    merchant, admin, customer = setup(db)
    plan = sv.create_plan(db, actor=admin, name="充500送50", price_cents=50000, bonus_cents=5000)
    # when
    row = sv.start_recharge(db, actor=customer_principal(customer), plan_id=plan.id)
    # then: an order of kind recharge waiting for payment, one virtual line, nothing credited yet
    order = db.get(Order, row.order_id)
    assert (order.kind, order.status, order.fulfilment_type, order.payable_cents) == \
        ("recharge", "pending_payment", "virtual", 50000)
    assert "virtual" in FULFILMENT_LABELS
    assert bal(db, customer) == (0, 0)
    # when: paid (order.paid), twice
    assert sv.credit_recharge(db, merchant_id=merchant.id, order_id=order.id) == "credited"
    assert sv.credit_recharge(db, merchant_id=merchant.id, order_id=order.id) == "already"
    # then
    assert bal(db, customer) == (50000, 5000)
    assert ledger.verify(db, merchant.id) == []


def test_inactive_plan_cannot_be_bought(db: Session) -> None:
    merchant, admin, customer = setup(db)
    plan = sv.create_plan(db, actor=admin, name="充100", price_cents=10000)
    sv.update_plan(db, plan.id, actor=admin, active=False)
    with pytest.raises(Conflict) as err:
        sv.start_recharge(db, actor=customer_principal(customer), plan_id=plan.id)
    assert err.value.code == "plan_inactive"
    assert db.scalar(select(func.count()).select_from(Recharge).where(Recharge.merchant_id == merchant.id)) == 0


def test_spend_takes_principal_and_bonus_in_proportion(db: Session) -> None:
    # given: 500 + 50
    merchant, admin, customer = setup(db)
    recharge(db, admin, customer, 50000, 5000)
    # when: 110.00 is spent
    use = sv.spend(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=11000, source="payment",
                   source_id=1, order_id=1)
    # then: 10:1 → 100.00 principal, 10.00 bonus
    assert (use.principal_cents, use.bonus_cents) == (10000, 1000)
    assert bal(db, customer) == (40000, 4000)
    # and: 0.01 (a tie of remainders goes to the principal)
    use2 = sv.spend(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=1, source="payment",
                    source_id=2, order_id=2)
    assert (use2.principal_cents, use2.bonus_cents) == (1, 0)


def test_spend_beyond_the_balance_moves_nothing(db: Session) -> None:
    merchant, admin, customer = setup(db)
    recharge(db, admin, customer, 10000, 1000)
    entries_before = db.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.merchant_id == merchant.id))
    with pytest.raises(sv.InsufficientBalance):
        sv.spend(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=11001, source="payment",
                 source_id=1, order_id=1)
    assert bal(db, customer) == (10000, 1000)
    assert db.scalar(select(func.count()).select_from(LedgerEntry)
                     .where(LedgerEntry.merchant_id == merchant.id)) == entries_before
    assert db.scalar(select(func.count()).select_from(BalanceUse).where(BalanceUse.merchant_id == merchant.id)) == 0


def test_refunds_go_back_in_the_shares_taken(db: Session) -> None:
    # given: 30.00 principal + 10.00 bonus, 40.00 spent (30 + 10)
    merchant, admin, customer = setup(db)
    recharge(db, admin, customer, 3000, 1000)
    sv.spend(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=4000, source="payment",
             source_id=7, order_id=7)
    provider = sv.StoredValueBalanceProvider()
    # when: refunded in three parts (0.01, 0.03, the rest)
    provider.refund(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=1, payment_id=7, refund_id=1)
    assert bal(db, customer) == (1, 0)
    provider.refund(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=3, payment_id=7, refund_id=2)
    assert bal(db, customer) == (3, 1)
    provider.refund(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=3, payment_id=7, refund_id=2)
    assert bal(db, customer) == (3, 1)  # the same refund again: nothing
    provider.refund(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=3996, payment_id=7, refund_id=3)
    # then: exactly what was taken, per account
    assert bal(db, customer) == (3000, 1000)
    assert ledger.verify(db, merchant.id) == []


def test_adjustment_needs_a_reason_and_is_audited(db: Session) -> None:
    merchant, admin, customer = setup(db)
    with pytest.raises(AppError):
        sv.adjust(db, actor=admin, customer_id=customer.id, account="bonus", delta_cents=500, reason=" ")
    out = sv.adjust(db, actor=admin, customer_id=customer.id, account="bonus", delta_cents=500, reason="补偿")
    assert out["bonus_cents"] == 500 and out["principal_cents"] == 0
    with pytest.raises(sv.InsufficientBalance):
        sv.adjust(db, actor=admin, customer_id=customer.id, account="principal", delta_cents=-1, reason="误充")
    logs = list(db.scalars(select(AuditLog).where(AuditLog.merchant_id == merchant.id,
                                                 AuditLog.action == "stored_value.adjust")))
    assert [(a.target_id, a.details["delta_cents"], a.details["reason"]) for a in logs] == [(customer.id, 500, "补偿")]


def test_a_guide_cannot_adjust(db: Session) -> None:
    merchant, admin, customer = setup(db)
    guide = principal_of(db, make_staff(db, merchant=merchant, role="guide"))
    with pytest.raises(AppError) as err:
        sv.adjust(db, actor=guide, customer_id=customer.id, account="principal", delta_cents=100, reason="x")
    assert err.value.status_code == 403
    assert bal(db, customer) == (0, 0)


# ---------------------------------------------------------------- property test

op = st.one_of(
    st.tuples(st.just("recharge"), st.integers(1, 100_000), st.integers(0, 20_000)),
    st.tuples(st.just("spend"), st.integers(1, 150_000), st.just(0)),
    st.tuples(st.just("refund"), st.integers(0, 30), st.integers(1, 150_000)),
    st.tuples(st.just("adjust_principal"), st.integers(-50_000, 50_000), st.just(0)),
    st.tuples(st.just("adjust_bonus"), st.integers(-50_000, 50_000), st.just(0)),
    st.tuples(st.just("jump"), st.integers(1, 400 * 24 * 60), st.just(0)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_random_sequences_keep_the_ledger_exact(db: Session, ops) -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with clock.frozen(now):
        merchant, admin, customer = setup(db)
    principal = bonus = 0
    uses: list[tuple[int, BalanceUse]] = []
    provider = sv.StoredValueBalanceProvider()
    for kind, a, b in ops:
        with clock.frozen(now):
            if kind == "jump":
                now += dt.timedelta(minutes=a)
            elif kind == "recharge":
                recharge(db, admin, customer, a, b)
                principal, bonus = principal + a, bonus + b
            elif kind == "spend":
                payment_id = next(_ids)
                if a > principal + bonus:
                    with pytest.raises(sv.InsufficientBalance):
                        sv.spend(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=a,
                                 source="payment", source_id=payment_id, order_id=payment_id)
                else:
                    use = sv.spend(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=a,
                                   source="payment", source_id=payment_id, order_id=payment_id)
                    # principal and bonus in proportion to the balances, never more than either holds
                    assert use.principal_cents + use.bonus_cents == a
                    assert use.principal_cents <= principal and use.bonus_cents <= bonus
                    assert abs(use.principal_cents * (principal + bonus) - a * principal) < principal + bonus
                    principal -= use.principal_cents
                    bonus -= use.bonus_cents
                    uses.append((payment_id, use))
            elif kind == "refund" and uses:
                payment_id, use = uses[a % len(uses)]
                left = use.amount_cents - use.returned_principal_cents - use.returned_bonus_cents
                amount = min(b, left)
                if amount:
                    before = (use.returned_principal_cents, use.returned_bonus_cents)
                    provider.refund(db, merchant_id=merchant.id, customer_id=customer.id, amount_cents=amount,
                                    payment_id=payment_id, refund_id=next(_ids))
                    principal += use.returned_principal_cents - before[0]
                    bonus += use.returned_bonus_cents - before[1]
                    assert use.returned_principal_cents <= use.principal_cents
                    assert use.returned_bonus_cents <= use.bonus_cents
                    if amount == left:  # fully given back: exactly what was taken, per account
                        assert (use.returned_principal_cents, use.returned_bonus_cents) == \
                            (use.principal_cents, use.bonus_cents)
            elif kind in ("adjust_principal", "adjust_bonus") and a:
                account = kind.removeprefix("adjust_")
                current = principal if account == "principal" else bonus
                if current + a < 0:
                    with pytest.raises(sv.InsufficientBalance):
                        sv.adjust(db, actor=admin, customer_id=customer.id, account=account, delta_cents=a, reason="测")
                else:
                    sv.adjust(db, actor=admin, customer_id=customer.id, account=account, delta_cents=a, reason="测")
                    principal, bonus = (principal + a, bonus) if account == "principal" else (principal, bonus + a)
        # then, after every step: the model, never negative, entries sum to balances
        assert bal(db, customer) == (principal, bonus)
        assert principal >= 0 and bonus >= 0
        assert ledger.verify(db, merchant.id) == []
    sums = dict(db.execute(select(LedgerAccount.kind, func.sum(LedgerEntry.delta))
                           .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
                           .where(LedgerAccount.merchant_id == merchant.id, LedgerAccount.owner_id == customer.id)
                           .group_by(LedgerAccount.kind)).all())
    assert sums.get(sv.PRINCIPAL, 0) == principal and sums.get(sv.BONUS, 0) == bonus


def test_a_customer_merge_moves_the_balances_once(db: Session) -> None:
    from siyu.customers import service as customers

    # given: two records of one person, each with stored value
    merchant, admin, source = setup(db)
    target = make_customer(db, merchant=merchant)
    recharge(db, admin, source, 10000, 1000)
    recharge(db, admin, target, 2000, 0)
    # when: merged (customer.merged is handled after the commit), and the move replayed
    customers.merge_customers(db, source_id=source.id, target_id=target.id, actor=admin)
    db.commit()
    assert bal(db, target) == (12000, 1000)
    sv.move_customer(db, merchant_id=merchant.id, source_id=source.id, target_id=target.id)
    # then: everything is on the target, per account; the recharges follow; the ledger agrees
    assert bal(db, source) == (0, 0)
    assert bal(db, target) == (12000, 1000)
    assert {r.customer_id for r in sv.list_recharges(db, merchant_id=merchant.id)} == {target.id}
    assert ledger.verify(db, merchant.id) == []
