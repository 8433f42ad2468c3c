"""The rebuild in the database (INSERT … SELECT … GROUP BY over `orders.paid_goods_select`) gives exactly what
the orders give one by one in Python: the channel group and the snapshot's ids read in SQL follow the Python
rules case by case, and the per-customer rows equal a reference computed order by order (refunds whole and
partial, a merge, payments at 23:59:59 / 00:00:30 Shanghai time across a month end, two payments in the same
second). The order.paid handler takes the payment from its payload in a few statements."""

from __future__ import annotations

import datetime as dt
import itertools
import re

from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from siyu.analytics import service as analytics
from siyu.analytics.models import CustomerPurchaseStats
from siyu.analytics.service import aggregates
from siyu.analytics.service.common import CHANNEL_GROUP, Filters, channel_group, channel_group_sql, local_day
from siyu.core.events import Event
from siyu.core.models import OutboxEvent
from siyu.customers import service as customers
from siyu.db import run_last
from siyu.orders import service as orders
from siyu.orders.models import Order
from tests.analytics.conftest import at, paid_order, refund
from tests.analytics.test_aggregates import daily, replay_order_events, stats
from tests.factories.customers import make_customer
from tests.factories.merchants import principal_of


def _sql_rows(db, merchant_id: int) -> dict[int, tuple]:
    """order id -> (group, guide_id, sharer_staff_id, sharer_customer_id, referrer_customer_id, live_id,
    channel, campaign, day) as the database computes them."""
    f = orders.paid_goods_select(db.get_bind().dialect.name, merchant_id=merchant_id).subquery()
    stmt = select(f.c.order_id, channel_group_sql(f.c), f.c.guide_id, f.c.sharer_staff_id, f.c.sharer_customer_id,
                  f.c.referrer_customer_id, f.c.live_id, f.c.channel, f.c.campaign, f.c.day)
    out = {}
    for oid, *rest in db.execute(stmt):
        day = rest[-1] if isinstance(rest[-1], dt.date) else dt.date.fromisoformat(rest[-1])
        out[oid] = (*rest[:-1], day)
    return out


def _python_rows(db, merchant_id: int) -> dict[int, tuple]:
    return {f.order_id: (channel_group(f), f.guide_id, f.sharer_staff_id, f.sharer_customer_id, f.referrer_customer_id,
                         f.live_id, f.channel, f.campaign, local_day(f.paid_at))
            for f in orders.paid_order_facts(db, merchant_id=merchant_id)}


def test_the_channel_group_in_sql_is_the_python_group_for_every_case(db, sales):
    m = sales["merchant"].id
    order = sales["orders"]["o3"]
    channels = [*CHANNEL_GROUP, "unknown", "", None]
    sharers = [{}, {"sharer_staff_id": 5}, {"sharer_customer_id": 7}, {"referrer_customer_id": 9},
               {"sharer_staff_id": 0, "sharer_customer_id": None}]
    seen = set()
    for channel, sharer, fulfilment in itertools.product(channels, sharers, ("delivery", "pickup", "leader")):
        # given one order with this snapshot and fulfilment
        db.execute(update(Order).where(Order.id == order.id).values(
            attribution={"channel": channel, **sharer}, fulfilment_type=fulfilment))
        # then the SQL CASE gives the Python group
        sql, py = _sql_rows(db, m)[order.id], _python_rows(db, m)[order.id]
        assert sql == py, (channel, sharer, fulfilment)
        seen.add(py[0])
    assert seen == {"store", "platform", "content", "social"}


def test_the_snapshot_ids_in_sql_follow_the_python_rule(db, sales):
    m = sales["merchant"].id
    order = sales["orders"]["o3"]
    cases = [(5, 5), ("12", 12), ("+3", 3), ("-4", -4), (0, 0), (2.9, 2), (-2.9, -2), (True, 1), (False, 0),
             ("", None), (None, None), ("null", None), ("abc", None), ("1.5", None), (" 7", None), ([1], None),
             ({"a": 1}, None)]
    for value, expected in cases:
        db.execute(update(Order).where(Order.id == order.id).values(
            attribution={"channel": "live", "campaign": "c-1", "guide_id": value, "live_id": value}))
        sql, py = _sql_rows(db, m)[order.id], _python_rows(db, m)[order.id]
        assert sql == py, value
        assert (py[1], py[5]) == (expected, expected), value
    # a key missing, and a snapshot that is not an object
    for snapshot in ({"channel": "oa"}, [], "x"):
        db.execute(update(Order).where(Order.id == order.id).values(attribution=snapshot))
        assert _sql_rows(db, m)[order.id] == _python_rows(db, m)[order.id], snapshot


def _reference(db, merchant_id: int) -> dict[int, tuple]:
    """The per-customer rows computed order by order in Python (the rebuild's definition), in the
    column order of test_aggregates.stats."""
    acc: dict[int, dict] = {}
    for f in orders.paid_order_facts(db, merchant_id=merchant_id):  # paid time, then id
        a = acc.setdefault(f.customer_id, {"paid": 0, "kept": [], "cents": 0})
        a["paid"] += 1
        if f.total_cents > f.refunded_cents:
            a["kept"].append(f)
            a["cents"] += f.total_cents - f.refunded_cents
    out = {}
    for cid, a in acc.items():
        kept = a["kept"]
        first = kept[0] if kept else None
        first_month = local_day(first.paid_at).replace(day=1) if first else None
        bits = 0
        for f in kept:
            d = local_day(f.paid_at)
            k = (d.year - first_month.year) * 12 + d.month - first_month.month
            if 0 < k <= 62:
                bits |= 1 << k
        out[cid] = (a["paid"], len(kept), a["cents"], first.paid_at if first else None,
                    max((f.paid_at for f in kept), default=None), first_month,
                    (first.channel or "") if first else "", channel_group(first) if first else "",
                    (first.campaign or "") if first else "", bits, kept[1].paid_at if len(kept) > 1 else None)
    return out


def test_the_rebuild_equals_the_orders_one_by_one_and_the_events(db, sales):
    m = sales["merchant"]
    c2, c3, c5 = sales["c2"], sales["c3"], sales["c5"]
    # given c5 buying at 23:59:59 on 06-30 and 00:00:30 on 07-01 (Shanghai: two months), the second
    # refunded in part; c3 paying twice in the same second (the lower id is the first), the first through
    # live refunded whole; and c3 merged into c2 (their orders move to c2)
    paid_order(db, m, c5, when=at(2026, 6, 30, 23, 59, 59), price_cents=1200, channel="oa")
    o_b = paid_order(db, m, c5, when=at(2026, 7, 1, 0, 0, 30), price_cents=3000, quantity=3, channel="search")
    refund(db, o_b, when=at(2026, 7, 2), units=1)
    same = at(2026, 6, 20, 8)
    o_x = paid_order(db, m, c3, when=same, price_cents=500, channel="live")
    o_y = paid_order(db, m, c3, when=same, price_cents=700, channel="moments")
    assert o_x.id < o_y.id
    refund(db, o_x, when=at(2026, 6, 21))
    customers.merge_customers(db, source_id=c3.id, target_id=c2.id, actor=principal_of(db, sales["admin"]))
    orders.move_customer_rows(db, merchant_id=m.id, source_id=c3.id, target_id=c2.id)
    db.flush()
    # when the aggregates are kept from the events and then rebuilt
    replay_order_events(db, m.id)
    incremental = (daily(db, m.id), stats(db, m.id))
    report = aggregates.rebuild(db, merchant_id=m.id)
    rebuilt = (daily(db, m.id), stats(db, m.id))
    # then the rebuild equals the events and the reference computed order by order
    assert report["orders"] == 12
    assert rebuilt == incremental
    assert rebuilt[1] == _reference(db, m.id)
    # c5: kept 6000 (05-31), 1200 (06-30), 9000 - 3000 (07-01); first in May through store_qr; bought again
    # one (June) and two (July) months later
    c5_row = rebuilt[1][c5.id]
    assert c5_row[:3] == (3, 3, 13200)
    assert (c5_row[5], c5_row[6], c5_row[9]) == (dt.date(2026, 5, 1), "store_qr", 0b110)
    assert c5_row[10] == at(2026, 6, 30, 23, 59, 59)
    # c2 now holds c3's orders: o3 06-01, o4 06-03 (half refunded), o7 06-07, o_x (refunded whole), o_y
    c2_row = rebuilt[1][c2.id]
    assert c2_row[:3] == (5, 4, 5000 + 4000 + 7000 + 700)
    assert c3.id not in rebuilt[1]
    # the daily sales: the month-end pair lands on 06-30 and 07-01
    days = {r[0]: r[7:] for r in rebuilt[0] if r[0] >= dt.date(2026, 6, 30)}
    assert days == {dt.date(2026, 6, 30): (1, 1200, 0), dt.date(2026, 7, 1): (1, 9000, 3000)}


def _count_statements(db):
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    return seen, listener


def test_a_payment_is_counted_from_its_event_in_a_few_statements(db, sales):
    m = sales["merchant"]
    aggregates.rebuild(db, merchant_id=m.id)
    c6 = make_customer(db, merchant=m, nickname="c6")
    # (after the days the rebuild counted people for: the people part has nothing to recount)
    first = paid_order(db, m, c6, when=at(2026, 6, 10, 11), price_cents=2500, channel="live")
    again = paid_order(db, m, c6, when=at(2026, 7, 9, 10), price_cents=1500, channel="oa")
    events = {row.payload["order_id"]: row for row in db.scalars(select(OutboxEvent).where(
        OutboxEvent.merchant_id == m.id, OutboxEvent.name == "order.paid"))}
    engine = db.get_bind()
    for order in (first, again):
        row = events[order.id]
        seen, listener = _count_statements(db)
        sa_event.listen(engine, "before_cursor_execute", listener)
        try:
            aggregates.on_order_paid(db, merchant_id=m.id, fact=orders.fact_of_paid_event(dict(row.payload)))
        finally:
            sa_event.remove(engine, "before_cursor_execute", listener)
        # the order is read once by id (is it refunded, whose is it now), never loaded whole, and the
        # customer's row takes two statements (no read of their orders)
        on_orders = [s for s in seen if re.search(r"\bFROM orders\b", s)]
        assert len(on_orders) == 1 and "WHERE orders.id = " in on_orders[0]
        assert len([s for s in seen if "analytics_customer_stats" in s]) == 2
    s = CustomerPurchaseStats
    row = db.execute(select(s.paid_orders, s.kept_orders, s.kept_cents, s.first_channel, s.month_bits, s.second_paid_at)
                     .where(s.merchant_id == m.id, s.customer_id == c6.id)).one()
    assert tuple(row) == (2, 2, 4000, "live", 0b10, at(2026, 7, 9, 10))


def test_a_refund_handled_before_its_payment_is_not_counted_twice(db, sales):
    m = sales["merchant"]
    aggregates.rebuild(db, merchant_id=m.id)
    c6 = make_customer(db, merchant=m, nickname="c6")
    paid_order(db, m, c6, when=at(2026, 6, 8, 10), price_cents=2500, channel="live")
    late = paid_order(db, m, c6, when=at(2026, 6, 9, 10), price_cents=1500, channel="oa")
    refund(db, late, when=at(2026, 6, 9, 12))
    rows = list(db.scalars(select(OutboxEvent).where(OutboxEvent.merchant_id == m.id,
                                                     OutboxEvent.name.in_(["order.paid", "order.refunded"]))
                           .order_by(OutboxEvent.id)))
    paid_late = [r for r in rows if r.name == "order.paid" and r.payload["order_id"] == late.id][0]
    # given the events handled out of order: the first payment, the refund, then the refunded payment
    from siyu.analytics.handlers import aggregates as handlers

    for r in [x for x in rows if x is not paid_late] + [paid_late]:
        fn = handlers.count_paid_order if r.name == "order.paid" else handlers.count_refund
        fn(db, Event(id=r.id, name=r.name, merchant_id=m.id, payload=dict(r.payload)))
        run_last(db)  # what the handler's commit runs: the day's sales row
    incremental = stats(db, m.id)[c6.id]
    aggregates.rebuild(db, merchant_id=m.id)
    # then the row is the rebuild's: two paid orders, one kept
    assert stats(db, m.id)[c6.id] == incremental
    assert incremental[:3] == (2, 1, 2500)


def test_leaderboard_repurchase_by_a_past_period_end_from_the_aggregates(db, sales):
    admin = principal_of(db, sales["admin"])
    # c1 (guide A) bought on 04-15, 05-26, 06-02: by 05-20 a buyer, not yet again; by 05-31 again
    cases = [Filters(start=dt.date(2026, 5, 1), end=dt.date(2026, 5, 20)),
             Filters(start=dt.date(2026, 5, 1), end=dt.date(2026, 5, 31))]
    source = [analytics.leaderboard(db, actor=admin, filters=f) for f in cases]
    aggregates.rebuild(db, merchant_id=sales["merchant"].id)
    built = [analytics.leaderboard(db, actor=admin, filters=f) for f in cases]
    assert built == source
    got = [[(r.name, r.buyers, r.repeat_buyers) for r in rows] for rows in built]
    # guide B: c3 and c5 bought first in June and on 05-31
    assert got == [[("导购A", 1, 0), ("导购B", 0, 0)], [("导购A", 1, 1), ("导购B", 1, 0)]]
