"""A small merchant with hand-computed figures for every analytics view (see `sales` and the numbers
worked out in each test)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from siyu.attribution.models.ownership import AttributedOrder
from siyu.attribution.models.shares import FunnelEvent, Share
from siyu.attribution.service import funnel as funnel_events
from siyu.core import clock
from siyu.core.auth import Role, system_principal
from siyu.customers.models import Customer
from siyu.orders import service as orders
from siyu.orders.models import Order
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, make_store
from tests.factories.orders import customer_principal, make_order, make_sku, pay, pickup

SH = clock.SHANGHAI
# Now: 10:00 on 2026-06-10 in Shanghai. The period under test is 2026-06-01..2026-06-07; the one before it
# 2026-05-25..2026-05-31.
NOW = dt.datetime(2026, 6, 10, 2, 0, tzinfo=dt.UTC)
START, END = dt.date(2026, 6, 1), dt.date(2026, 6, 7)


def at(y: int, mo: int, d: int, h: int = 12, mi: int = 0, s: int = 0) -> dt.datetime:
    """A Shanghai wall-clock time as UTC."""
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=SH).astimezone(dt.UTC)


def set_channel(db, order: Order, channel: str | None, **more) -> None:
    """The attribution snapshot the ownership rules would have written for a touch of this channel, and what
    checkout writes from it in the same transaction: attribution's copy of the order and the channel of its
    funnel row."""
    snapshot = {**(order.attribution or {}), "channel": channel, **more}
    db.execute(update(Order).where(Order.id == order.id).values(attribution=snapshot))
    db.execute(update(AttributedOrder).where(AttributedOrder.order_id == order.id).values(
        snapshot=snapshot, channel=channel))
    share_id = db.scalar(select(Share.id).where(Share.merchant_id == order.merchant_id,
                                                Share.campaign == more["campaign"])) if more.get("campaign") else None
    db.execute(update(FunnelEvent).where(FunnelEvent.order_id == order.id).values(channel=channel, share_id=share_id))
    db.expire(order)


def paid_order(db, merchant, customer, *, when: dt.datetime, price_cents: int, quantity: int = 1,
               channel: str | None = None, fulfilment=None, campaign: str | None = None) -> Order:
    """An order placed and paid at `when`; its attribution snapshot names `channel` (and `campaign`) from its
    creation on (as checkout writes it), so the `order.paid` payload carries it too."""
    sku = make_sku(db, merchant=merchant, price_cents=price_cents, stock=10)
    with clock.frozen(when):
        order = make_order(db, merchant=merchant, customer=customer, items=[(sku, quantity)],
                           status="pending_payment", fulfilment=fulfilment)
        if channel is not None or campaign is not None:
            set_channel(db, order, channel, **({"campaign": campaign} if campaign else {}))
        pay(db, order)
    return order


def refund(db, order: Order, *, when: dt.datetime, units: int | None = None) -> None:
    customer = customer_principal(db.get(Customer, order.customer_id))
    line = orders.order_lines(db, order.id)[0]
    with clock.frozen(when):
        request = orders.request_refund(db, order.id, actor=customer, reason="不要了",
                                        lines=[(line.id, units)] if units else None)
        orders.approve_refund(db, request.id, actor=system_principal(order.merchant_id))
    db.refresh(order)


def event(db, merchant, kind: str, when: dt.datetime, *, customer=None, visitor: str | None = None) -> None:
    funnel_events.record_event(db, merchant_id=merchant.id, kind=kind, customer_id=customer.id if customer else None,
                               visitor_id=visitor, at=when)


@pytest.fixture
def sales(db):
    """Orders (Shanghai times; price x quantity; channel):
    o8 c1 04-15 12:00  4000 guide_qr              o1 c1 05-26 12:00 10000 guide_qr
    o6 c5 05-31 23:59:59 6000 store_qr (the day before the period, by one second)
    o3 c2 06-01 23:59 5000 none, delivery          o2 c1 06-02 00:00:30 20000 guide_qr (UTC still 06-01)
    o4 c3 06-03 10:00 2 x 4000 live, one unit refunded (4000 back)
    o5 c4 06-05 15:00 3000 none, pickup at store A, refunded whole
    o7 c2 06-07 20:00 7000 community
    Funnel events: 06-01 view v1, view c2; 06-02 view c1, exposure v2, view v2; 06-05 add_to_cart c4,
    exposure v3; 06-06 view v1; 06-07 view c2; 05-26 view v4. No event on 06-03 and 06-04."""
    merchant = make_merchant(db, name="分析品牌")
    store_a = make_store(db, merchant=merchant, name="A店")
    store_b = make_store(db, merchant=merchant, name="B店")
    admin = make_staff(db, merchant=merchant, username="an-boss")
    guide_a = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_a, username="an-guide-a", name="导购A")
    guide_b = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_b, username="an-guide-b", name="导购B")
    with clock.frozen(NOW):
        c1 = make_customer(db, merchant=merchant, owner=guide_a, nickname="c1", created_at=at(2026, 4, 1))
        c2 = make_customer(db, merchant=merchant, owner=guide_a, nickname="c2", created_at=at(2026, 6, 1, 10))
        c3 = make_customer(db, merchant=merchant, owner=guide_b, nickname="c3", created_at=at(2026, 5, 1))
        c4 = make_customer(db, merchant=merchant, nickname="c4", created_at=at(2026, 5, 1))
        c5 = make_customer(db, merchant=merchant, owner=guide_b, nickname="c5", created_at=at(2026, 5, 1))
    o8 = paid_order(db, merchant, c1, when=at(2026, 4, 15), price_cents=4000, channel="guide_qr")
    o1 = paid_order(db, merchant, c1, when=at(2026, 5, 26), price_cents=10000, channel="guide_qr")
    o6 = paid_order(db, merchant, c5, when=at(2026, 5, 31, 23, 59, 59), price_cents=6000, channel="store_qr")
    o3 = paid_order(db, merchant, c2, when=at(2026, 6, 1, 23, 59), price_cents=5000)
    o2 = paid_order(db, merchant, c1, when=at(2026, 6, 2, 0, 0, 30), price_cents=20000, channel="guide_qr")
    o4 = paid_order(db, merchant, c3, when=at(2026, 6, 3, 10), price_cents=4000, quantity=2, channel="live")
    refund(db, o4, when=at(2026, 6, 4, 9), units=1)
    o5 = paid_order(db, merchant, c4, when=at(2026, 6, 5, 15), price_cents=3000, fulfilment=pickup(store_a))
    refund(db, o5, when=at(2026, 6, 6, 9))
    o7 = paid_order(db, merchant, c2, when=at(2026, 6, 7, 20), price_cents=7000, channel="community")
    event(db, merchant, "view", at(2026, 5, 26, 9), visitor="visitor-0004")
    event(db, merchant, "view", at(2026, 6, 1, 9), visitor="visitor-0001")
    event(db, merchant, "view", at(2026, 6, 1, 10), customer=c2)
    event(db, merchant, "view", at(2026, 6, 2, 9), customer=c1)
    event(db, merchant, "exposure", at(2026, 6, 2, 9), visitor="visitor-0002")
    event(db, merchant, "view", at(2026, 6, 2, 9, 5), visitor="visitor-0002")
    event(db, merchant, "add_to_cart", at(2026, 6, 5, 14), customer=c4)
    event(db, merchant, "exposure", at(2026, 6, 5, 14), visitor="visitor-0003")
    event(db, merchant, "view", at(2026, 6, 6, 9), visitor="visitor-0001")
    event(db, merchant, "view", at(2026, 6, 7, 19), customer=c2)
    # another merchant's sale in the period is never counted
    other = make_merchant(db)
    paid_order(db, other, make_customer(db, merchant=other), when=at(2026, 6, 2), price_cents=99900)
    db.flush()
    with clock.frozen(NOW):
        yield {"merchant": merchant, "store_a": store_a, "store_b": store_b, "admin": admin, "guide_a": guide_a,
               "guide_b": guide_b, "c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5,
               "orders": {"o1": o1, "o2": o2, "o3": o3, "o4": o4, "o5": o5, "o6": o6, "o7": o7, "o8": o8}}
