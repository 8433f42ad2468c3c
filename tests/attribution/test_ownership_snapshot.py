"""Order attribution: the snapshot written at order creation (last touch, share code, bound guide and
store, referrer, channel, campaign, live session) and that it never changes afterwards."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.attribution.service import ownership, shares, transfer
from siyu.core import clock
from siyu.core.auth import Role
from siyu.orders.models import Order
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, make_store, principal_of
from tests.factories.orders import make_sku, pay, place_order

T0 = dt.datetime(2026, 4, 1, 2, 0, tzinfo=dt.UTC)


def test_snapshot_keys_all_present_for_an_unknown_customer_path(db: Session) -> None:
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    snap = ownership.order_attribution(db, merchant_id=merchant.id, customer_id=customer.id, share_code="nope",
                                       now=clock.now())
    assert snap == dict.fromkeys(ownership.SNAPSHOT_KEYS)


def test_snapshot_from_last_touch_and_bindings(db: Session) -> None:
    # given: c brought by distributor r (chat), then bound to guide g by a Moments share, then a live touch by r
    merchant = make_merchant(db)
    store = make_store(db, merchant=merchant)
    g = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    r = make_customer(db, merchant=merchant, nickname="分销员")
    c = make_customer(db, merchant=merchant, nickname="买家")
    sku = make_sku(db, merchant=merchant, price_cents=5000)
    product_share = shares.get_or_create_share(db, merchant_id=merchant.id, target_type="product",
                                               target_id=sku.product_id, channel="moments", sharer_staff_id=g.id,
                                               campaign="spring")
    with clock.frozen(T0):
        shares.record_touch(db, merchant_id=merchant.id, channel="chat", customer_id=c.id, sharer_customer_id=r.id)
    with clock.frozen(T0 + dt.timedelta(hours=1)):
        t2 = shares.record_touch(db, merchant_id=merchant.id, channel="moments", customer_id=c.id,
                                 share_code=product_share.code)
    with clock.frozen(T0 + dt.timedelta(hours=2)):
        t3 = shares.record_touch(db, merchant_id=merchant.id, channel="live", customer_id=c.id,
                                 sharer_customer_id=r.id, target_type="live", target_id=77, campaign="live-77")
        # when: c orders without a share code → last touch (the live one); with g's code → g's share
        plain = place_order(db, customer=c, items=[(sku, 1)])
        coded = place_order(db, customer=c, items=[(sku, 1)], share_code=product_share.code)
    # then
    assert plain.attribution == {
        "share_code": None, "touch_id": t3.id, "channel": "live", "sharer_staff_id": None, "sharer_customer_id": r.id,
        "guide_id": g.id, "store_id": store.id, "referrer_customer_id": r.id, "campaign": "live-77", "live_id": 77}
    assert coded.attribution == {
        "share_code": product_share.code, "touch_id": t2.id, "channel": "moments", "sharer_staff_id": g.id,
        "sharer_customer_id": None, "guide_id": g.id, "store_id": store.id, "referrer_customer_id": r.id,
        "campaign": "spring", "live_id": None}
    assert (coded.owner_id, coded.store_id) == (g.id, store.id)


def test_snapshot_never_changes_after_payment(db: Session) -> None:
    # given: c bound to g1 and brought by r; a paid order
    merchant = make_merchant(db, slug=None)
    store = make_store(db, merchant=merchant)
    admin = make_staff(db, merchant=merchant, role=Role.BRAND_ADMIN)
    g1 = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    g2 = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    r, r2 = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    c = make_customer(db, merchant=merchant)
    merchant.settings = {**merchant.settings, "guide_protection_days": 1, "referrer_protection_days": 1}
    with clock.frozen(T0):
        shares.record_touch(db, merchant_id=merchant.id, channel="chat", customer_id=c.id, sharer_staff_id=g1.id)
        shares.record_touch(db, merchant_id=merchant.id, channel="chat", customer_id=c.id, sharer_customer_id=r.id)
        order = place_order(db, customer=c, items=[(make_sku(db, merchant=merchant), 1)])
        pay(db, order)
    before = dict(order.attribution)
    assert (before["guide_id"], before["referrer_customer_id"]) == (g1.id, r.id)
    # when: later touches rebind both kinds, and the customer is transferred by hand
    with clock.frozen(T0 + dt.timedelta(days=5)):
        shares.record_touch(db, merchant_id=merchant.id, channel="moments", customer_id=c.id, sharer_staff_id=g2.id)
        shares.record_touch(db, merchant_id=merchant.id, channel="moments", customer_id=c.id, sharer_customer_id=r2.id)
        transfer.transfer_customers(db, actor=principal_of(db, admin), customer_ids=[c.id], to_guide_id=g1.id)
    # then: the bindings moved but the paid order's snapshot is what it was
    assert ownership.referrer_of(db, merchant_id=merchant.id, customer_id=c.id) == r2.id
    db.expire_all()
    assert db.get(Order, order.id).attribution == before
    assert db.get(Order, order.id).status == "paid"


def test_bulk_snapshots_match_the_last_touch_at_each_orders_time(db: Session) -> None:
    # given: a customer touched by g (chat) at T0 and by r (live 9) at T0+2h, brought by r at T0+2h
    merchant = make_merchant(db)
    store = make_store(db, merchant=merchant)
    g = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    r = make_customer(db, merchant=merchant)
    c = make_customer(db, merchant=merchant)
    with clock.frozen(T0):
        t1 = shares.record_touch(db, merchant_id=merchant.id, channel="chat", customer_id=c.id, sharer_staff_id=g.id)
    with clock.frozen(T0 + dt.timedelta(hours=2)):
        t2 = shares.record_touch(db, merchant_id=merchant.id, channel="live", customer_id=c.id,
                                 sharer_customer_id=r.id, target_type="live", target_id=9)
    facts = [ownership.OrderFacts(customer_id=c.id, created_at=T0 - dt.timedelta(hours=1), guide_id=None, store_id=None),
             ownership.OrderFacts(customer_id=c.id, created_at=T0 + dt.timedelta(hours=1), guide_id=g.id,
                                  store_id=store.id),
             ownership.OrderFacts(customer_id=c.id, created_at=T0 + dt.timedelta(hours=3), guide_id=g.id,
                                  store_id=store.id)]
    # when
    before, between, after = ownership.bulk_snapshots(db, merchant_id=merchant.id, orders=facts)
    # then
    assert before == dict.fromkeys(ownership.SNAPSHOT_KEYS)
    assert (between["touch_id"], between["sharer_staff_id"], between["guide_id"], between["referrer_customer_id"]) == (
        t1.id, g.id, g.id, None)
    assert (after["touch_id"], after["sharer_customer_id"], after["live_id"], after["referrer_customer_id"]) == (
        t2.id, r.id, 9, r.id)
    # and the copies are written in bulk
    ownership.record_orders(db, merchant_id=merchant.id, rows=[
        {"order_id": 501, "order_no": "N501", "customer_id": c.id, "snapshot": after, "total_cents": 100,
         "paid_cents": 100, "created_at": T0, "paid_at": T0}])
    row = ownership.attributed_order(db, merchant_id=merchant.id, order_id=501)
    assert (row.snapshot, row.referrer_customer_id, row.channel) == (after, r.id, "live")
