"""RFM with a channel or campaign filter read from the per-customer × dimension rows
(`analytics_customer_dim_stats`) gives exactly the numbers of the orders read one by one; the rows kept on
order events equal a rebuild (conftest.`sales` plus campaign orders, refunds whole and partial)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib

import pytest
from sqlalchemy import select

from siyu.analytics import service as analytics
from siyu.analytics.models import CustomerDimStats
from siyu.analytics.service import aggregates
from siyu.analytics.service.common import Filters
from siyu.core import clock
from tests.analytics.conftest import END, START, at, refund, set_channel
from tests.analytics.test_aggregates import replay_order_events, run_new_events
from tests.factories.customers import make_customer
from tests.factories.merchants import principal_of
from tests.factories.orders import make_order, make_sku, pay

rfm = importlib.import_module("siyu.analytics.service.rfm")
TODAY = dt.date(2026, 6, 10)
FILTERS = [{"channel": "social"}, {"channel": "content"}, {"channel": "platform"}, {"channel": "store"},
           {"channel": "guide_qr"}, {"channel": "live"}, {"channel": "moments"}, {"channel": "nowhere"},
           {"campaign": "618"}, {"campaign": "spring"}, {"campaign": "none-such"}]


def campaign_order(db, merchant, customer, *, when: dt.datetime, price_cents: int, channel: str | None,
                   campaign: str, quantity: int = 1):
    """A paid order whose attribution snapshot names `channel` and `campaign` from its creation on."""
    sku = make_sku(db, merchant=merchant, price_cents=price_cents, stock=10)
    with clock.frozen(when):
        order = make_order(db, merchant=merchant, customer=customer, items=[(sku, quantity)])
        set_channel(db, order, channel, campaign=campaign)
        pay(db, order)
    return order


@pytest.fixture
def campaigns(db, sales):
    """conftest.sales plus: c1 06-08 guide_qr "618" 5000; c2 06-09 moments "618" 3000, refunded whole;
    c3 06-09 live "618" 2 x 2500, one unit refunded; c5 06-06 no channel "spring" 1000; c6 (a new
    customer, no owner) 05-20 moments "spring" 4000 and 06-09 moments 6000."""
    m = sales["merchant"]
    campaign_order(db, m, sales["c1"], when=at(2026, 6, 8, 9), price_cents=5000, channel="guide_qr", campaign="618")
    o = campaign_order(db, m, sales["c2"], when=at(2026, 6, 9, 10), price_cents=3000, channel="moments",
                       campaign="618")
    refund(db, o, when=at(2026, 6, 9, 11))
    o = campaign_order(db, m, sales["c3"], when=at(2026, 6, 9, 23, 59, 59), price_cents=2500, channel="live",
                       campaign="618", quantity=2)
    refund(db, o, when=at(2026, 6, 10, 1), units=1)
    campaign_order(db, m, sales["c5"], when=at(2026, 6, 6, 0, 0, 1), price_cents=1000, channel=None, campaign="spring")
    c6 = make_customer(db, merchant=m, nickname="c6")
    campaign_order(db, m, c6, when=at(2026, 5, 20), price_cents=4000, channel="moments", campaign="spring")
    campaign_order(db, m, c6, when=at(2026, 6, 9), price_cents=6000, channel="moments", campaign="")
    db.flush()
    return {**sales, "c6": c6}


def dims(db, merchant_id: int) -> set[tuple]:
    d = CustomerDimStats
    return {tuple(r) for r in db.execute(select(d.customer_id, d.dim, d.kept_orders, d.kept_cents, d.last_paid_at).where(
        d.merchant_id == merchant_id))}


def test_dimension_rows_kept_on_events_equal_a_rebuild(db, campaigns):
    m = campaigns["merchant"].id
    # given the order events (payments, refunds) run through the handlers
    replay_order_events(db, m)
    incremental = dims(db, m)
    # when rebuilt from the orders, then the same rows
    aggregates.rebuild(db, merchant_id=m)
    assert dims(db, m) == incremental
    by_key = {(cid, dim): (n, cents) for cid, dim, n, cents, _last in incremental}
    c1, c2, c3, c6 = (campaigns[k].id for k in ("c1", "c2", "c3", "c6"))
    # c1: four guide_qr orders (4000 + 10000 + 20000 + 5000), one in "618"
    assert by_key[(c1, "g:social")] == by_key[(c1, "c:guide_qr")] == (4, 39000)
    assert by_key[(c1, "k:618")] == (1, 5000)
    # c2's "618" order was refunded whole: no moments or "618" row; c3 kept one unit of it
    assert (c2, "k:618") not in by_key and (c2, "c:moments") not in by_key
    assert by_key[(c3, "k:618")] == (1, 2500) and by_key[(c3, "c:live")] == (2, 6500)
    # c6: both orders moments (social); one in "spring" (an empty campaign is none)
    assert by_key[(c6, "c:moments")] == (2, 10000) and by_key[(c6, "k:spring")] == (1, 4000)
    assert (c6, "k:") not in by_key


def test_payments_and_refunds_after_the_rebuild_keep_the_rows_like_a_rebuild(db, campaigns):
    m = campaigns["merchant"]
    aggregates.rebuild(db, merchant_id=m.id)
    done: set[int] = set()
    run_new_events(db, m.id, done)  # written before the rebuild: skipped
    # given c1 buying again (the usual payment: added to the rows), c6 too, then c6's refunded whole
    campaign_order(db, m, campaigns["c1"], when=at(2026, 6, 10, 8), price_cents=700, channel="wecom", campaign="618")
    run_new_events(db, m.id, done)
    o = campaign_order(db, m, campaigns["c6"], when=at(2026, 6, 10, 9), price_cents=900, channel="live",
                       campaign="spring")
    run_new_events(db, m.id, done)
    refund(db, o, when=at(2026, 6, 10, 9, 30))
    run_new_events(db, m.id, done)
    incremental = dims(db, m.id)
    # when rebuilt, then the same rows
    aggregates.rebuild(db, merchant_id=m.id)
    assert dims(db, m.id) == incremental
    by_key = {(cid, dim): (n, cents) for cid, dim, n, cents, _last in incremental}
    assert by_key[(campaigns["c1"].id, "k:618")] == (2, 5700)
    assert by_key[(campaigns["c1"].id, "c:wecom")] == (1, 700)
    assert (campaigns["c6"].id, "c:live") not in by_key


def test_rfm_by_channel_or_campaign_from_the_rows_equals_the_orders(db, campaigns, monkeypatch):
    admin = principal_of(db, campaigns["admin"])
    guide = principal_of(db, campaigns["guide_a"])
    actors = [(admin, {}), (guide, {}), (admin, {"store_id": campaigns["store_a"].id}),
              (admin, {"guide_id": campaigns["guide_b"].id})]
    # periods ending today (scored from the rows as they are) and one ending 06-07 (as of then); the trend
    # as of 05-31, 06-08 (c1's "618" order on 06-08 not yet) and 06-05 (c5's "spring" at 00:00:01 on 06-06 not yet)
    periods = [(START, TODAY), (dt.date(2026, 6, 9), TODAY), (dt.date(2026, 6, 6), END)]
    cases = [(actor, Filters(start=start, end=end, **narrow, **dim)) for start, end in periods
             for actor, narrow in actors for dim in FILTERS]

    def reports(method: str) -> list[dict]:
        return [analytics.rfm_dict(analytics.rfm(db, actor=a, filters=f, method=method), with_customers=True)
                for a, f in cases]

    # given every report computed from the orders (aggregates not built)
    computed = {method: reports(method) for method in rfm.METHODS}
    assert sum(r["scored_customers"] for r in computed["quintiles"]) > 40  # most cases score someone
    # when the aggregates are built
    aggregates.rebuild(db, merchant_id=campaigns["merchant"].id)
    assert aggregates.dims_usable(db, merchant_id=campaigns["merchant"].id)
    # then every report is the same
    for method in rfm.METHODS:
        assert reports(method) == computed[method]
    # and they were read from the dimension rows (and a few customers' orders), never from all the orders
    monkeypatch.setattr(rfm, "_aggregates", None)
    for actor, f in cases:
        rfm.rfm(db, actor=actor, filters=f)


def test_a_merchant_built_before_the_dimension_rows_reads_the_orders(db, campaigns):
    m = campaigns["merchant"].id
    admin = principal_of(db, campaigns["admin"])
    f = Filters(start=START, end=TODAY, channel="social")
    want = analytics.rfm_dict(analytics.rfm(db, actor=admin, filters=f), with_customers=True)
    aggregates.rebuild(db, merchant_id=m)
    # given a merchant whose aggregates were built before the table existed
    state = db.scalar(select(aggregates.AggregateState).where(aggregates.AggregateState.merchant_id == m))
    state.dims_built_at = None
    db.flush()
    assert aggregates.usable(db, merchant_id=m) and not aggregates.dims_usable(db, merchant_id=m)
    # then a channel's RFM is still right (from the orders)
    assert analytics.rfm_dict(analytics.rfm(db, actor=admin, filters=f), with_customers=True) == want
    # a channel and a campaign together have no dimension row: read from the orders too
    both = dataclasses.replace(f, campaign="618")
    assert aggregates.dim_of(both.channel, both.campaign) is None
    assert analytics.rfm(db, actor=admin, filters=both).scored == 1  # c1's 06-08 guide_qr "618" order
