"""The analytics aggregates: kept on order events they equal a rebuild from the orders, and every view
reads the same numbers from them as from the orders (conftest.`sales`: refunds, a sale at 23:59:59 and
one at 00:00:30 Shanghai time, a sale before the period)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import select

from siyu.analytics import service as analytics
from siyu.analytics.handlers import aggregates as handlers
from siyu.analytics.models import CustomerPurchaseStats, DailySales
from siyu.analytics.service import aggregates
from siyu.analytics.service.common import Filters
from siyu.core.events import Event
from siyu.core.models import OutboxEvent
from siyu.db import run_last
from tests.analytics.conftest import END, START, at, event, paid_order, refund
from tests.factories.customers import make_customer
from tests.factories.merchants import principal_of

TODAY = dt.date(2026, 6, 10)


def daily(db, merchant_id: int) -> set[tuple]:
    rows = db.execute(select(DailySales.day, DailySales.store_id, DailySales.owner_id, DailySales.guide_id,
                             DailySales.channel, DailySales.grp, DailySales.campaign, DailySales.orders,
                             DailySales.gmv_cents, DailySales.refunded_cents).where(
        DailySales.merchant_id == merchant_id))
    return {tuple(r) for r in rows}


def stats(db, merchant_id: int) -> dict[int, tuple]:
    s = CustomerPurchaseStats
    rows = db.execute(select(s.customer_id, s.paid_orders, s.kept_orders, s.kept_cents, s.first_paid_at,
                             s.last_paid_at, s.first_month, s.first_channel, s.first_group, s.first_campaign,
                             s.month_bits, s.second_paid_at).where(s.merchant_id == merchant_id))
    return {r[0]: tuple(r[1:]) for r in rows}


def replay_order_events(db, merchant_id: int) -> int:
    """Run the analytics handlers on the order events the flows wrote, in the order they were written."""
    fns = {"order.paid": handlers.count_paid_order, "order.refunded": handlers.count_refund,
           "customer.merged": handlers.move_merged_stats}
    n = 0
    for row in db.scalars(select(OutboxEvent).where(OutboxEvent.merchant_id == merchant_id,
                                                    OutboxEvent.name.in_(list(fns))).order_by(OutboxEvent.id)):
        fns[row.name](db, Event(id=row.id, name=row.name, merchant_id=merchant_id, payload=dict(row.payload)))
        run_last(db)  # what the handler's commit runs: the day's sales row
        n += 1
    return n


def test_aggregates_kept_on_events_equal_a_rebuild(db, sales):
    m = sales["merchant"].id
    # given the order events of conftest.sales (8 payments, 2 refunds) run through the handlers
    assert replay_order_events(db, m) == 10
    incremental = (daily(db, m), stats(db, m))
    # when the aggregates are rebuilt from the orders
    report = aggregates.rebuild(db, merchant_id=m)
    # then both are the same rows
    assert report["orders"] == 8
    assert (daily(db, m), stats(db, m)) == incremental
    # o2 at 00:00:30 on 06-02 Shanghai (UTC 06-01) is on 06-02; o6 at 23:59:59 on 05-31 on 05-31;
    # o4's 4000 refund is booked to its sale's day; o5 (refunded whole) still counts as a sale
    by_day = {}
    for day, *_k, n, gmv, refunded in incremental[0]:
        prev = by_day.get(day, (0, 0, 0))
        by_day[day] = (prev[0] + n, prev[1] + gmv, prev[2] + refunded)
    assert by_day == {dt.date(2026, 4, 15): (1, 4000, 0), dt.date(2026, 5, 26): (1, 10000, 0),
                      dt.date(2026, 5, 31): (1, 6000, 0), dt.date(2026, 6, 1): (1, 5000, 0),
                      dt.date(2026, 6, 2): (1, 20000, 0), dt.date(2026, 6, 3): (1, 8000, 4000),
                      dt.date(2026, 6, 5): (1, 3000, 3000), dt.date(2026, 6, 7): (1, 7000, 0)}
    # c1: three orders kept (04-15, 05-26, 06-02), 34000; first in April through guide_qr (social); bought
    # again one month (May) and two months (June) later. c4's only order was refunded whole: not kept.
    c1 = incremental[1][sales["c1"].id]
    assert c1[:3] == (3, 3, 34000)
    assert (c1[5], c1[6], c1[7], c1[9]) == (dt.date(2026, 4, 1), "guide_qr", "social", 0b110)
    c4 = incremental[1][sales["c4"].id]
    assert c4[:3] == (1, 0, 0) and c4[3] is None and c4[9] == 0


def run_new_events(db, merchant_id: int, done: set[int]) -> None:
    """Run the analytics handlers on the events written since the last call (as after each commit)."""
    fns = {"order.paid": handlers.count_paid_order, "order.refunded": handlers.count_refund}
    for row in db.scalars(select(OutboxEvent).where(OutboxEvent.merchant_id == merchant_id).order_by(OutboxEvent.id)):
        if row.id not in done and row.name in fns:
            fns[row.name](db, Event(id=row.id, name=row.name, merchant_id=merchant_id, payload=dict(row.payload)))
            run_last(db)  # what the handler's commit runs: the day's sales row
        done.add(row.id)


def test_sales_and_refunds_after_the_rebuild_are_kept_like_a_rebuild_would(db, sales):
    m = sales["merchant"].id
    aggregates.rebuild(db, merchant_id=m)
    done: set[int] = set()
    rebuilt = (daily(db, m), stats(db, m))
    run_new_events(db, m, done)  # the fixture's events: written before the rebuild, so skipped
    assert (daily(db, m), stats(db, m)) == rebuilt
    # given a new customer's sale at 23:30 on 06-09, a second sale 40 minutes later (06-10), the first
    # refunded whole; and c1 buying again on 06-10 (added to their row without reading their orders)
    c6 = make_customer(db, merchant=sales["merchant"], nickname="c6")
    o9 = paid_order(db, sales["merchant"], c6, when=at(2026, 6, 9, 23, 30), price_cents=2500, channel="live")
    run_new_events(db, m, done)
    paid_order(db, sales["merchant"], c6, when=at(2026, 6, 10, 0, 10), price_cents=1500, channel="oa")
    run_new_events(db, m, done)
    paid_order(db, sales["merchant"], sales["c1"], when=at(2026, 6, 10, 9), price_cents=900, channel="oa")
    run_new_events(db, m, done)
    c1_row = stats(db, m)[sales["c1"].id]
    assert c1_row[:3] == (4, 4, 34900) and c1_row[9] == 0b110  # June already had a purchase
    refund(db, o9, when=at(2026, 6, 10, 1))
    run_new_events(db, m, done)
    incremental = (daily(db, m), stats(db, m))
    # when rebuilt from the orders, then the same rows
    aggregates.rebuild(db, merchant_id=m)
    assert (daily(db, m), stats(db, m)) == incremental
    # c6 kept only the 06-10 order: first (and last) purchase is then, through oa (content)
    c6_row = incremental[1][c6.id]
    assert c6_row[:3] == (2, 1, 1500)
    assert (c6_row[5], c6_row[6], c6_row[7]) == (dt.date(2026, 6, 1), "oa", "content")


def _views(db, actor, f: Filters, year: Filters) -> dict:
    return {
        "channel_mix": analytics.channel_mix_dict(analytics.channel_mix(db, actor=actor, filters=f)),
        "leaderboard": analytics.leaderboard_dict(analytics.leaderboard(db, actor=actor, filters=f), f),
        "rfm": analytics.rfm_dict(analytics.rfm(db, actor=actor, filters=f), with_customers=True),
        "funnel": analytics.funnel_dict(analytics.funnel(db, actor=actor, filters=f)),
        "cohorts": analytics.cohorts_dict(analytics.cohorts(db, actor=actor, filters=year)),
        "gmv": analytics.decomposition_dict(analytics.decompose(db, actor=actor, filters=f)),
    }


def test_every_view_reads_the_same_numbers_from_the_aggregates(db, sales):
    admin = principal_of(db, sales["admin"])
    guide = principal_of(db, sales["guide_a"])
    cases = []
    for end in (END, TODAY):  # a past period (daily rows only) and one ending today (per-customer rows too)
        f = Filters(start=START, end=end)
        year = dataclasses.replace(f, start=dt.date(2026, 4, 1))
        cases += [(admin, f, year), (guide, f, year),
                  (admin, dataclasses.replace(f, channel="social"), dataclasses.replace(year, channel="social")),
                  (admin, dataclasses.replace(f, channel="live"), dataclasses.replace(year, channel="live")),
                  (admin, dataclasses.replace(f, store_id=sales["store_a"].id),
                   dataclasses.replace(year, store_id=sales["store_a"].id)),
                  (admin, dataclasses.replace(f, guide_id=sales["guide_b"].id),
                   dataclasses.replace(year, guide_id=sales["guide_b"].id))]
    # today (06-10, read from the events after a rebuild): v1 again (seen on 06-01 and 06-06), a new v9, and c5
    event(db, sales["merchant"], "view", at(2026, 6, 10, 8), visitor="visitor-0001")
    event(db, sales["merchant"], "exposure", at(2026, 6, 10, 8), visitor="visitor-0009")
    event(db, sales["merchant"], "view", at(2026, 6, 10, 9), customer=sales["c5"])
    # after END, in its month: c1 buys again (April's cohort comes back in June only after END) and c8 buys
    # for the first time (June's cohort gains them only after END)
    paid_order(db, sales["merchant"], sales["c1"], when=at(2026, 6, 9, 12), price_cents=1100, channel="guide_qr")
    c8 = make_customer(db, merchant=sales["merchant"], nickname="c8")
    paid_order(db, sales["merchant"], c8, when=at(2026, 6, 8, 12), price_cents=1300, channel="moments")
    for end in (END, TODAY):
        f, year = Filters(start=START, end=end), Filters(start=dt.date(2026, 4, 1), end=end)
        cases += [(admin, dataclasses.replace(f, channel="moments"), dataclasses.replace(year, channel="moments")),
                  (admin, dataclasses.replace(f, campaign="spring"), dataclasses.replace(year, campaign="spring"))]
    # given every view computed from the orders (aggregates not built)
    before = [_views(db, a, f, y) for a, f, y in cases]
    # when the aggregates are built
    aggregates.rebuild(db, merchant_id=sales["merchant"].id)
    assert aggregates.usable(db, merchant_id=sales["merchant"].id)
    # then every view gives the same numbers
    after = [_views(db, a, f, y) for a, f, y in cases]
    for b, a in zip(before, after, strict=True):
        assert a == b
    # and they are the hand-computed ones (test_views): the channel mix of the period
    mix = after[0]["channel_mix"]
    assert [(g["group"], g["orders"], g["net_cents"]) for g in mix["groups"]] == [
        ("store", 1, 0), ("platform", 1, 5000), ("content", 1, 4000), ("social", 2, 27000)]


def test_views_read_the_orders_until_the_aggregates_are_built(db, sales):
    m = sales["merchant"].id
    assert not aggregates.usable(db, merchant_id=m)
    aggregates.rebuild(db, merchant_id=m)
    assert aggregates.usable(db, merchant_id=m)
    # a view whose horizon is in the past cannot read the per-customer rows (whole histories)
    assert not aggregates.usable(db, merchant_id=m, until=Filters(start=START, end=END).until)


def test_the_job_loads_completed_days_and_gmv_stays_the_same(db, sales):
    m = sales["merchant"]
    admin = principal_of(db, sales["admin"])
    event(db, m, "view", at(2026, 6, 10, 8), visitor="visitor-0001")
    event(db, m, "view", at(2026, 6, 10, 23, 59), visitor="visitor-0010")
    f = Filters(start=START, end=TODAY)
    source = analytics.decomposition_dict(analytics.decompose(db, actor=admin, filters=f))
    # given aggregates built on 06-10 (funnel people loaded through 06-09)
    aggregates.rebuild(db, merchant_id=m.id)
    assert aggregates.people_through(db, merchant_id=m.id) == dt.date(2026, 6, 9)
    assert analytics.decomposition_dict(analytics.decompose(db, actor=admin, filters=f)) == source
    # when the job runs on 06-12 (twice: idempotent)
    assert aggregates.advance_people(db, today=dt.date(2026, 6, 12)) == {m.id: 4}  # v1, v10: view, visitor
    assert aggregates.advance_people(db, today=dt.date(2026, 6, 12)) == {}
    # then 06-10 and 06-11 are loaded, and the figures are the same
    assert aggregates.people_through(db, merchant_id=m.id) == dt.date(2026, 6, 11)
    again = analytics.decomposition_dict(analytics.decompose(db, actor=admin, filters=f))
    assert again == source
    # 06-10: v1 and v10 visited, nobody bought
    assert [d for d in again["days"] if d["day"] == "2026-06-10"][0]["visitors"] == 2
    assert again["current"]["visitors"] == 8
