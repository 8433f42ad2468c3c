"""Ladder prices (阶梯价): the price falls as distinct paying customers cross the thresholds; orders pay
the tier of their moment; at the end each paid order gets exactly quantity × (paid − final) back,
once; cancelled and wholly refunded orders do not count."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import Conflict
from siyu.orders import service as orders
from siyu.orders.models import Order, RefundRequest
from siyu.payments.models import Payment
from siyu.promotions.models.ladders import LadderEntry
from siyu.promotions.service import ladders
from siyu.promotions.states.ladders import LadderStatus
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import pay, place_order
from tests.factories.promotions import make_ladder

T0 = dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC)
END = T0 + dt.timedelta(days=2)


def _buy(db: Session, campaign, customer, quantity: int = 1, *, paid: bool = True) -> Order:  # type: ignore[no-untyped-def]
    order = place_order(db, customer=customer, items=[(campaign.sku_id, quantity)],
                        promotion={"kind": "ladder", "campaign_id": campaign.id})
    if paid:
        pay(db, order)
        db.commit()  # order.paid is handled after the commit
        db.refresh(campaign)
    return order


def test_tier_prices() -> None:
    tiers = [{"min_participants": 0, "price_cents": 10000}, {"min_participants": 3, "price_cents": 8000},
             {"min_participants": 5, "price_cents": 6000}]
    assert [ladders.price_for(tiers, n) for n in (0, 2, 3, 4, 5, 50)] == [10000, 10000, 8000, 8000, 6000, 6000]
    assert ladders.next_tier(tiers, 1) == {"min_participants": 3, "price_cents": 8000, "needed": 2}
    assert ladders.next_tier(tiers, 5) is None


def test_the_price_falls_and_the_differences_are_refunded_exactly_once(db: Session) -> None:
    with clock.frozen(T0):
        merchant = make_merchant(db)
        campaign = make_ladder(db, merchant=merchant, tiers=((0, 10000), (3, 8000), (5, 6000)),
                               starts_at=T0 - dt.timedelta(hours=1), ends_at=END)
        c = [make_customer(db, merchant=merchant, nickname=f"顾客{i}") for i in range(7)]
        # when: three customers pay at the first tier
        o0, o1, o2 = (_buy(db, campaign, c[i]) for i in range(3))
        assert [o.total_cents for o in (o0, o1, o2)] == [10000, 10000, 10000]
        assert (campaign.participants_count, ladders.ladder_view(campaign)["current_price_cents"]) == (3, 8000)
        # a customer's second order does not count twice
        o2b = _buy(db, campaign, c[2])
        assert (o2b.total_cents, campaign.participants_count) == (8000, 3)
        o3 = _buy(db, campaign, c[3], 2)
        o4 = _buy(db, campaign, c[4])
        assert (o3.total_cents, o4.total_cents, campaign.participants_count) == (16000, 8000, 5)
        # a whole refund before the end uncounts: back to the 80.00 tier
        refund = orders.request_refund(db, o1.id, actor=system_principal(merchant.id), reason="不要了", source="staff")
        orders.approve_refund(db, refund.id, actor=system_principal(merchant.id))
        db.commit()
        db.refresh(campaign)
        assert campaign.participants_count == 4
        o5 = _buy(db, campaign, c[5])
        assert (o5.total_cents, campaign.participants_count) == (8000, 5)
        # an order cancelled unpaid never counts
        o6 = _buy(db, campaign, c[6], paid=False)
        assert o6.total_cents == 6000
        orders.cancel_order(db, o6.id, actor=system_principal(merchant.id))
        db.commit()
        db.refresh(campaign)
        assert campaign.participants_count == 5
        # nothing is settled before the end
        assert ladders.settle_due(db, END - dt.timedelta(seconds=1)) == 0
    with clock.frozen(END):
        # when: the end
        assert ladders.settle_due(db, clock.now()) == 6
        assert ladders.settle_due(db, clock.now()) == 0
        db.refresh(campaign)
    # then: final price 60.00; each paid order gets quantity × (paid − 60.00), once
    assert (campaign.status, campaign.final_price_cents) == (LadderStatus.SETTLED, 6000)
    expected = {o0.id: 4000, o2.id: 4000, o2b.id: 2000, o3.id: 4000, o4.id: 2000, o5.id: 2000}
    entries = {e.order_id: e for e in db.scalars(select(LadderEntry).where(LadderEntry.campaign_id == campaign.id))}
    assert {oid: e.refund_cents for oid, e in entries.items() if e.status == "settled"} == expected
    assert (entries[o1.id].status, entries[o6.id].status) == ("void", "void")
    for order_id, amount in expected.items():
        order = db.get(Order, order_id)
        db.refresh(order)
        assert order.refunded_cents == amount
        assert db.get(Payment, order.payment_id).refunded_cents == amount
        assert db.scalar(select(func.count()).select_from(RefundRequest).where(
            RefundRequest.order_id == order_id, RefundRequest.source == "system")) == 1
    assert ladders.campaign_figures(db, merchant_id=merchant.id, campaign_ids=[campaign.id])[campaign.id] == \
        {"orders": 6, "units": 7, "gmv_cents": 60000, "refunded_cents": 18000}


def test_a_late_payment_after_settlement_is_refunded_at_once(db: Session) -> None:
    with clock.frozen(T0):
        merchant = make_merchant(db)
        campaign = make_ladder(db, merchant=merchant, tiers=((0, 1000), (2, 800)),
                               starts_at=T0 - dt.timedelta(hours=1), ends_at=T0 + dt.timedelta(minutes=10))
        late = _buy(db, campaign, make_customer(db, merchant=merchant), paid=False)
        _buy(db, campaign, make_customer(db, merchant=merchant))
        _buy(db, campaign, make_customer(db, merchant=merchant))
        assert campaign.participants_count == 2
    with clock.frozen(T0 + dt.timedelta(minutes=10)):
        assert ladders.settle_due(db, clock.now()) == 2
        # buying after the end is refused
        with pytest.raises(Conflict) as err:
            _buy(db, campaign, make_customer(db, merchant=merchant), paid=False)
        assert err.value.code == "campaign_not_running"
    with clock.frozen(T0 + dt.timedelta(minutes=12)):
        pay(db, late)
        db.commit()
        db.refresh(late)
    entry = db.scalars(select(LadderEntry).where(LadderEntry.order_id == late.id)).one()
    assert (entry.status, entry.refund_cents, late.refunded_cents) == ("settled", 200, 200)
    db.refresh(campaign)
    assert campaign.participants_count == 2


def test_the_per_customer_limit_counts_units(db: Session) -> None:
    merchant = make_merchant(db)
    campaign = make_ladder(db, merchant=merchant, per_customer_limit=2)
    customer = make_customer(db, merchant=merchant)
    _buy(db, campaign, customer, 2)
    with pytest.raises(Conflict) as err:
        _buy(db, campaign, customer, 1, paid=False)
    assert err.value.code == "ladder_limit_exceeded"
    assert db.scalar(select(func.count()).select_from(LadderEntry)
                     .where(LadderEntry.campaign_id == campaign.id)) == 1


def test_tiers_must_rise_in_participants_and_fall_in_price(db: Session) -> None:
    merchant = make_merchant(db)
    from siyu.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        make_ladder(db, merchant=merchant, tiers=((0, 1000), (3, 1200)))
    with pytest.raises(ValidationFailed):
        make_ladder(db, merchant=merchant, tiers=((2, 1000), (2, 900)))


def test_a_customer_merge_recounts_participants(db: Session) -> None:
    merchant = make_merchant(db)
    campaign = make_ladder(db, merchant=merchant, tiers=((0, 1000), (2, 800)))
    source, target = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    _buy(db, campaign, source)
    _buy(db, campaign, target)
    assert campaign.participants_count == 2
    # when: the two records turn out to be one person
    ladders.merge_customers(db, merchant_id=merchant.id, source_id=source.id, target_id=target.id)
    db.refresh(campaign)
    # then: one participant; both entries are the target's
    assert campaign.participants_count == 1
    assert set(db.scalars(select(LadderEntry.customer_id).where(LadderEntry.campaign_id == campaign.id))) == {target.id}


def test_a_failed_refund_leaves_the_entry_to_the_next_run(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    with clock.frozen(T0):
        merchant = make_merchant(db)
        campaign = make_ladder(db, merchant=merchant, tiers=((0, 1000), (1, 900)),
                               starts_at=T0 - dt.timedelta(hours=1), ends_at=T0 + dt.timedelta(minutes=5))
        order = _buy(db, campaign, make_customer(db, merchant=merchant))
        assert order.total_cents == 1000

    def unreachable(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("provider unreachable")

    # given: the provider cannot be reached at the end
    monkeypatch.setattr(orders, "refund_price_difference", unreachable)
    with clock.frozen(T0 + dt.timedelta(minutes=5)):
        assert ladders.settle_due(db, clock.now()) == 0
    entry = db.scalars(select(LadderEntry).where(LadderEntry.order_id == order.id)).one()
    db.refresh(entry)
    assert (entry.status, entry.refund_cents) == ("paid", 0)
    # when: the next run reaches it
    monkeypatch.undo()
    with clock.frozen(T0 + dt.timedelta(minutes=6)):
        assert ladders.settle_due(db, clock.now()) == 1
    db.refresh(entry)
    db.refresh(order)
    assert (entry.status, entry.refund_cents, order.refunded_cents) == ("settled", 100, 100)
