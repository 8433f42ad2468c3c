"""Group buying services: leaders, the wave contributor in checkout, cut-off, close and move."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import AppError, ValidationFailed
from siyu.customers.models import Customer
from siyu.groupbuy import service
from siyu.groupbuy.models import Commission, ManifestLine, Notification, WaveItem, WaveOrder, WaveOrderLine
from siyu.groupbuy.service.leaders import LeaderApplication
from siyu.ledger import service as ledger
from siyu.merchants.models import Merchant
from siyu.orders.models import Order
from tests.factories.customers import make_customer
from tests.factories.groupbuy import leader_fulfilment, make_leader, make_wave
from tests.factories.orders import customer_principal, make_sku, pay, place_order


def count(db: Session, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def commit(db: Session) -> None:
    """Commit the test's savepoint, so the events' handlers run (as after a request)."""
    db.commit()


def test_apply_approve_freeze_and_reapply(db: Session, merchant: Merchant) -> None:
    # given a customer
    customer = make_customer(db, merchant=merchant)
    actor = customer_principal(customer)
    app = LeaderApplication(name="王姐", phone="139 1234 5678", point_name="幸福里便利店", address="幸福路 8 号",
                            latitude=31.2, longitude=121.5, opening_hours="08:00-21:00")
    # when they apply
    leader = service.leaders.apply(db, actor=actor, application=app)
    # then the application waits for review, with the phone cleaned
    assert (leader.status, leader.phone, leader.customer_id) == ("applied", "13912345678", customer.id)
    with pytest.raises(AppError) as again:
        service.leaders.apply(db, actor=actor, application=app)
    assert again.value.code == "already_applied"
    system = system_principal(merchant.id)
    service.leaders.reject(db, leader.id, actor=system, reason="照片不清楚")
    assert service.leaders.apply(db, actor=actor, application=app).status == "applied"
    assert service.leaders.approve(db, leader.id, actor=system, route="东线").status == "active"
    assert service.leaders.freeze(db, leader.id, actor=system).status == "frozen"
    assert service.leaders.unfreeze(db, leader.id, actor=system).status == "active"


def test_application_field_errors(db: Session, merchant: Merchant) -> None:
    customer = make_customer(db, merchant=merchant)
    bad = LeaderApplication(name="", phone="12", point_name="", address="", latitude=91, longitude=None)
    with pytest.raises(ValidationFailed) as exc:
        service.leaders.apply(db, actor=customer_principal(customer), application=bad)
    assert set(exc.value.details["fields"]) == {"name", "phone", "point_name", "address", "latitude", "longitude"}
    assert count(db, service.leaders.Leader) == 0


def test_wave_prices_allocation_and_limits(db: Session, merchant: Merchant) -> None:
    # given a wave selling a 10-yuan SKU at 6.90, 5 units allocated, at most 2 per customer
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=100)
    leader = make_leader(db, merchant=merchant)
    wave = make_wave(db, merchant=merchant, items=[(sku, 690, 5, 2)])
    alice = make_customer(db, merchant=merchant)
    # when Alice buys 2 at the point
    order = place_order(db, customer=alice, items=[(sku, 2)], fulfilment=leader_fulfilment(leader))
    # then she pays the group price and the wave has 3 left
    assert (order.total_cents, order.fulfilment_type, order.leader_id) == (1380, "leader", leader.id)
    assert [a["kind"] for a in order.adjustments] == ["wave_price"]
    item = db.scalars(select(WaveItem).where(WaveItem.wave_id == wave.id)).one()
    db.refresh(item)
    assert item.sold == 2
    wave_order = db.scalars(select(WaveOrder).where(WaveOrder.order_id == order.id)).one()
    assert (wave_order.status, wave_order.wave_id, len(wave_order.pickup_code)) == ("pending_payment", wave.id, 6)
    # and a third unit is over her limit; nothing is written
    orders_before = count(db, Order)
    with pytest.raises(AppError) as exc, db.begin_nested():
        place_order(db, customer=alice, items=[(sku, 1)], fulfilment=leader_fulfilment(leader))
    assert exc.value.code == "wave_limit_exceeded"
    db.refresh(item)
    assert (count(db, Order), count(db, WaveOrder), item.sold) == (orders_before, 1, 2)


def test_not_in_wave_and_unknown_point_are_refused(db: Session, merchant: Merchant) -> None:
    sku = make_sku(db, merchant=merchant)
    other = make_sku(db, merchant=merchant)
    leader = make_leader(db, merchant=merchant)
    make_wave(db, merchant=merchant, items=[(sku, 500, 10)])
    buyer = make_customer(db, merchant=merchant)
    with pytest.raises(AppError) as exc:
        place_order(db, customer=buyer, items=[(sku, 1), (other, 1)], fulfilment=leader_fulfilment(leader))
    assert exc.value.code == "not_in_wave"
    with pytest.raises(AppError) as exc:
        place_order(db, customer=buyer, items=[(sku, 1)], fulfilment={"type": "leader", "leader_id": 999_999})
    assert exc.value.status_code == 422
    service.leaders.freeze(db, leader.id, actor=system_principal(merchant.id))
    with pytest.raises(AppError) as exc:
        place_order(db, customer=buyer, items=[(sku, 1)], fulfilment=leader_fulfilment(leader))
    assert exc.value.code == "point_unavailable"


def test_wave_serves_only_its_points(db: Session, merchant: Merchant) -> None:
    sku = make_sku(db, merchant=merchant)
    near = make_leader(db, merchant=merchant, region="浦东")
    far = make_leader(db, merchant=merchant, region="闵行")
    make_wave(db, merchant=merchant, items=[(sku, 500, 10)], regions=["浦东"])
    buyer = make_customer(db, merchant=merchant)
    assert place_order(db, customer=buyer, items=[(sku, 1)], fulfilment=leader_fulfilment(near)).total_cents == 500
    with pytest.raises(AppError) as exc:
        place_order(db, customer=buyer, items=[(sku, 1)], fulfilment=leader_fulfilment(far))
    assert exc.value.code == "point_not_served"


def test_cutoff_cancels_unpaid_snapshots_paid_and_is_idempotent(db: Session, merchant: Merchant) -> None:
    # given a wave with one paid and one unpaid order
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    leader = make_leader(db, merchant=merchant, route="东线")
    wave = make_wave(db, merchant=merchant, items=[(sku, 800, 20)])
    paid = place_order(db, customer=make_customer(db, merchant=merchant, nickname="甲"), items=[(sku, 3)],
                       fulfilment=leader_fulfilment(leader))
    pay(db, paid)
    unpaid = place_order(db, customer=make_customer(db, merchant=merchant, nickname="乙"), items=[(sku, 2)],
                         fulfilment=leader_fulfilment(leader))
    commit(db)
    # when the cut-off comes (twice)
    at = wave.cutoff_at + dt.timedelta(seconds=1)
    assert service.cutoff.close_due(db, at) == [wave.id]
    assert service.cutoff.close_due(db, at) == []
    commit(db)
    # then the unpaid order is cancelled and its units are back; the paid one is in the snapshot
    db.refresh(unpaid)
    assert unpaid.status == "cancelled"
    rows = list(db.scalars(select(ManifestLine).where(ManifestLine.wave_id == wave.id)))
    assert [(r.order_id, r.quantity, r.paid_cents, r.route, r.customer_name) for r in rows] == [
        (paid.id, 3, 2400, "东线", "甲")]
    assert service.cutoff.purchase_list(db, wave.id) == [
        {"sku_id": sku.id, "title": rows[0].title, "quantity": 3, "orders": 1, "paid_cents": 2400}]
    # and the leader's commission accrued at the default 10%
    assert service.commissions.earnings(db, merchant_id=merchant.id, leader_id=leader.id) == {
        "pending_cents": 240, "settled_cents": 0}
    # an order after the cut-off is refused
    with pytest.raises(AppError) as exc:
        place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 1)],
                    fulfilment=leader_fulfilment(leader))
    assert exc.value.code == "not_in_wave"


def test_closing_a_point_moves_its_orders_and_commissions(db: Session, merchant: Merchant) -> None:
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    closing = make_leader(db, merchant=merchant, commission_bps=500)
    target = make_leader(db, merchant=merchant)
    make_wave(db, merchant=merchant, items=[(sku, 1000, 20)])
    buyer = make_customer(db, merchant=merchant)
    order = place_order(db, customer=buyer, items=[(sku, 2)], fulfilment=leader_fulfilment(closing))
    pay(db, order)
    commit(db)
    system = system_principal(merchant.id)
    # a point with open orders cannot close without a target
    with pytest.raises(ValidationFailed):
        service.leaders.close(db, closing.id, actor=system, move_to_leader_id=None)
    # when it closes, moving its orders to the other point
    leader, moved = service.leaders.close(db, closing.id, actor=system, move_to_leader_id=target.id)
    # then
    assert (leader.status, moved) == ("closed", 1)
    wave_order = db.scalars(select(WaveOrder).where(WaveOrder.order_id == order.id)).one()
    assert (wave_order.leader_id, wave_order.original_leader_id) == (target.id, closing.id)
    assert [n.kind for n in db.scalars(select(Notification).where(Notification.customer_id == buyer.id))] == [
        "point_moved"]
    assert service.commissions.earnings(db, merchant_id=merchant.id, leader_id=closing.id)["pending_cents"] == 0
    assert service.commissions.earnings(db, merchant_id=merchant.id, leader_id=target.id)["pending_cents"] == 100
    assert db.scalars(select(Commission.leader_id)).all() == [target.id]
    assert ledger.verify(db, merchant.id) == []


def test_remembered_point(db: Session, merchant: Merchant) -> None:
    leader = make_leader(db, merchant=merchant)
    buyer = make_customer(db, merchant=merchant)
    assert service.points.remembered_point(db, merchant_id=merchant.id, customer_id=buyer.id) is None
    service.points.remember_point(db, actor=customer_principal(buyer), leader_id=leader.id)
    assert service.points.remembered_point(db, merchant_id=merchant.id, customer_id=buyer.id).id == leader.id
    with clock.frozen(clock.now()):
        service.leaders.freeze(db, leader.id, actor=system_principal(merchant.id))
    assert service.points.remembered_point(db, merchant_id=merchant.id, customer_id=buyer.id) is None


def test_whole_order_short_is_refunded_and_overdue_pickups_are_flagged(db: Session, merchant: Merchant) -> None:
    # given a closed wave with two paid orders at one point
    sku = make_sku(db, merchant=merchant, price_cents=1000, stock=50)
    leader = make_leader(db, merchant=merchant)
    wave = make_wave(db, merchant=merchant, items=[(sku, 1000, 20)])
    short = place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 2)],
                        fulfilment=leader_fulfilment(leader))
    whole = place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 1)],
                        fulfilment=leader_fulfilment(leader))
    pay(db, short)
    pay(db, whole)
    commit(db)
    system = system_principal(merchant.id)
    service.cutoff.close_wave(db, wave.id, early=True)
    # a code cannot be handed out before delivery
    leader_actor = customer_principal(db.get(Customer, leader.customer_id))
    code = db.scalars(select(WaveOrder.pickup_code).where(WaveOrder.order_id == whole.id)).one()
    with pytest.raises(AppError) as exc:
        service.delivery.verify_pickup(db, actor=leader_actor, code=code)
    assert exc.value.code == "not_delivered"
    # when both units of the first order are missing
    line_id = db.scalars(select(WaveOrderLine.order_line_id).where(WaveOrderLine.order_id == short.id)).one()
    result = service.delivery.mark_delivered(db, actor=system, wave_id=wave.id, leader_id=leader.id,
                                             shortages=[(line_id, 2)])
    commit(db)
    # then it is refunded in full and leaves the point; its commission is reversed
    assert (result.delivered_orders, result.refunded_orders, result.short_units) == (1, 1, 2)
    db.refresh(short)
    assert (short.status, short.refunded_cents) == ("refunded", 2000)
    statuses = dict(db.execute(select(WaveOrder.order_id, WaveOrder.status)).tuples().all())
    assert (statuses[short.id], statuses[whole.id]) == ("refunded", "delivered")
    commission = db.scalars(select(Commission).where(Commission.order_id == short.id)).one()
    assert (commission.status, commission.amount_cents, commission.reversed_cents) == ("reversed", 200, 200)
    assert service.commissions.earnings(db, merchant_id=merchant.id, leader_id=leader.id)["pending_cents"] == 100
    # and an order not picked up after the follow-up days is flagged once, its customer reminded
    later = clock.now() + dt.timedelta(days=3, minutes=1)
    assert service.delivery.flag_overdue(db, clock.now() + dt.timedelta(days=2)) == 0
    assert service.delivery.flag_overdue(db, later) == 1
    assert service.delivery.flag_overdue(db, later) == 0
    assert [o.order_id for o in service.delivery.overdue_orders(db, merchant_id=merchant.id)] == [whole.id]
    assert count(db, Notification, Notification.kind == "pickup_reminder") == 1
    assert ledger.verify(db, merchant.id) == []


def test_a_moved_order_whose_code_is_taken_at_the_new_point_gets_a_new_code(db: Session, merchant: Merchant) -> None:
    sku = make_sku(db, merchant=merchant, stock=50)
    closing, target = make_leader(db, merchant=merchant), make_leader(db, merchant=merchant)
    make_wave(db, merchant=merchant, items=[(sku, 500, 20)])
    there = place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 1)],
                        fulfilment=leader_fulfilment(target))
    moving = place_order(db, customer=make_customer(db, merchant=merchant), items=[(sku, 1)],
                         fulfilment=leader_fulfilment(closing))
    rows = {o.order_id: o for o in db.scalars(select(WaveOrder))}
    rows[moving.id].pickup_code = rows[there.id].pickup_code
    db.flush()
    service.leaders.close(db, closing.id, actor=system_principal(merchant.id), move_to_leader_id=target.id)
    db.refresh(rows[moving.id])
    assert rows[moving.id].leader_id == target.id
    assert rows[moving.id].pickup_code != rows[there.id].pickup_code
    note = db.scalars(select(Notification).where(Notification.order_id == moving.id)).one()
    assert rows[moving.id].pickup_code in note.text
