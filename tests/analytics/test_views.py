"""Every analytics view on the hand-computed data set of conftest.`sales` (exact numbers)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from fractions import Fraction

from siyu.analytics import service as analytics
from siyu.analytics.service import gmv
from siyu.analytics.service.common import Filters
from tests.analytics.conftest import END, START
from tests.factories.merchants import principal_of


def period(**kw) -> Filters:
    return Filters(start=START, end=END, **kw)


def test_gmv_day_by_day_with_midnight_boundaries_refunds_and_a_zero_visit_day(db, sales):
    # given the admin's view of 06-01..06-07
    r = analytics.decompose(db, actor=principal_of(db, sales["admin"]), filters=period())
    # then each Shanghai day: o3 at 23:59 is 06-01, o2 at 00:00:30 (UTC 06-01) is 06-02; 06-03 has a buyer
    # without any event (counted as a visitor); 06-04 has nothing; 06-06 a visitor who did not buy
    days = {d.day.isoformat(): (d.visitors, d.buyers, d.orders, d.gmv_cents, d.refunded_cents, d.conversion_bps,
                                d.aov_cents) for d in r.days}
    assert days == {
        "2026-06-01": (2, 1, 1, 5000, 0, 5000, 5000),
        "2026-06-02": (2, 1, 1, 20000, 0, 5000, 20000),
        "2026-06-03": (1, 1, 1, 8000, 4000, 10000, 8000),
        "2026-06-04": (0, 0, 0, 0, 0, None, None),
        "2026-06-05": (2, 1, 1, 3000, 3000, 5000, 3000),
        "2026-06-06": (1, 0, 0, 0, 0, 0, None),
        "2026-06-07": (1, 1, 1, 7000, 0, 10000, 7000),
    }
    # the period: 7 distinct people (v1 v2 v3 c1 c2 c3 c4), 4 buyers, 5 orders, GMV 43000, 7000 refunded
    c = r.current
    assert (c.visitors, c.buyers, c.orders, c.gmv_cents, c.refunded_cents, c.net_cents) == (7, 4, 5, 43000, 7000, 36000)
    assert (c.conversion_bps, c.aov_cents) == (5714, 10750)
    # the period before: v4, c1 (o1), c5 (o6 at 23:59:59 on 05-31): 3 visitors, 2 buyers, 16000
    p = r.previous
    assert (p.visitors, p.buyers, p.orders, p.gmv_cents) == (3, 2, 2, 16000)


def test_gmv_change_is_split_between_the_factors_exactly(db, sales):
    r = analytics.decompose(db, actor=principal_of(db, sales["admin"]), filters=period())
    # given V 3 -> 7, C 2/3 -> 4/7, AOV 8000 -> 10750: Shapley shares (by hand) 23126.98, -4551.59, 8424.60
    assert r.change_cents == 27000
    assert r.contributions == {"visitors": 23127, "conversion": -4552, "aov": 8425}
    assert sum(r.contributions.values()) == r.change_cents


def test_shapley_split_is_exact_and_handles_an_empty_period():
    base = (Fraction(0), Fraction(0), Fraction(0))
    current = (Fraction(10), Fraction(1, 2), Fraction(300))
    parts = gmv.shapley_split(base, current)
    assert sum(parts) == 1500
    # only the all-current ordering path matters: each factor gets a third
    assert parts == [Fraction(500)] * 3
    assert gmv.round_to_cents([Fraction(1, 3), Fraction(1, 3), Fraction(1, 3)], 1) == [1, 0, 0]
    assert gmv.round_to_cents([Fraction(-7, 2), Fraction(5, 2)], -1) == [-3, 2]


def test_gmv_for_a_guide_counts_only_their_customers(db, sales):
    r = analytics.decompose(db, actor=principal_of(db, sales["guide_a"]), filters=period())
    # c1 and c2 only: events c2 06-01, c1 06-02, c2 06-07; orders o3, o2, o7
    c = r.current
    assert (c.visitors, c.buyers, c.orders, c.gmv_cents) == (2, 2, 3, 32000)


def test_channel_mix_against_the_default_target(db, sales):
    m = analytics.channel_mix(db, actor=principal_of(db, sales["admin"]), filters=period())
    rows = {r.group: (r.orders, r.gmv_cents, r.net_cents, r.share_bps, r.target_bps, r.gap_bps) for r in m.rows}
    # store: o5 pickup, wholly refunded; platform: o3; content: o4 (live) half refunded; social: o2 + o7
    assert rows == {
        "store": (1, 3000, 0, 0, 4000, -4000),
        "platform": (1, 5000, 5000, 1389, 2000, -611),
        "content": (1, 8000, 4000, 1111, 2000, -889),
        "social": (2, 27000, 27000, 7500, 2000, 5500),
    }
    assert m.net_cents == 36000
    assert m.by_channel == {"": 5000, "community": 7000, "guide_qr": 20000, "live": 4000}


def test_channel_mix_target_is_the_merchants(db, sales):
    admin = principal_of(db, sales["admin"])
    analytics.update_settings(db, actor=admin, target_mix_bps={"store": 1000, "platform": 1000, "content": 1000,
                                                               "social": 7000})
    m = analytics.channel_mix(db, actor=admin, filters=period())
    assert [(r.group, r.target_bps, r.gap_bps) for r in m.rows] == [
        ("store", 1000, -1000), ("platform", 1000, 389), ("content", 1000, 111), ("social", 7000, 500)]


def test_rfm_scores_segments_and_trend(db, sales):
    r = analytics.rfm(db, actor=principal_of(db, sales["admin"]), filters=period())
    # as of 06-07: c1 last 06-02, 3 orders, 34000; c2 06-07, 2, 12000; c3 06-03, 1, 4000 (after the refund);
    # c5 05-31, 1, 6000; c4's only order was refunded whole: not scored
    got = {c.customer_id: (c.recency_days, c.frequency, c.monetary_cents, c.r, c.f, c.m, c.segment) for c in r.customers}
    s = sales
    assert got == {
        s["c1"].id: (5, 3, 34000, 2, 4, 4, "at_risk"),
        s["c2"].id: (0, 2, 12000, 4, 3, 3, "loyal"),
        s["c3"].id: (4, 1, 4000, 3, 1, 1, "potential"),
        s["c5"].id: (7, 1, 6000, 1, 1, 2, "lost"),
    }
    seg = {x.segment: (x.customers, x.value_cents, x.previous_customers, x.change) for x in r.segments}
    # as of 05-31: c1 (recency 5, 2 orders, 14000) at risk; c5 (0, 1, 6000) potential
    assert seg == {"champions": (0, 0, 0, 0), "loyal": (1, 12000, 0, 1), "potential": (1, 4000, 1, 0),
                   "new": (0, 0, 0, 0), "at_risk": (1, 34000, 1, 0), "cant_lose": (0, 0, 0, 0),
                   "hibernating": (0, 0, 0, 0), "lost": (1, 6000, 0, 1)}
    assert r.cuts == {"r": [7, 5, 4, 0], "f": [1, 1, 2, 3], "m": [4000, 6000, 12000, 34000]}


def test_rfm_for_a_guide_scores_their_own_customers(db, sales):
    r = analytics.rfm(db, actor=principal_of(db, sales["guide_a"]), filters=period())
    got = {c.customer_id: (c.r, c.f, c.m, c.segment) for c in r.customers}
    assert got == {sales["c1"].id: (1, 3, 3, "at_risk"), sales["c2"].id: (3, 1, 1, "potential")}


def test_rfm_with_merchant_thresholds(db, sales):
    admin = principal_of(db, sales["admin"])
    analytics.update_settings(db, actor=admin, rfm_method="thresholds",
                              rfm_thresholds={"r_days": [1, 3, 5, 6], "f_orders": [2, 3, 4, 5],
                                              "m_cents": [5000, 10000, 20000, 30000]})
    r = analytics.rfm(db, actor=admin, filters=period())
    got = {c.customer_id: (c.r, c.f, c.m, c.segment) for c in r.customers}
    # c1: 5 days -> R 3 (exceeds 1 and 3), 3 orders -> F 3, 34000 -> M 5; c2: 0 -> 5, 2 -> 2, 12000 -> 3
    # c3: 4 -> 3, 1 -> 1, 4000 -> 1; c5: 7 -> 1, 1 -> 1, 6000 -> 2
    assert got == {sales["c1"].id: (3, 3, 5, "loyal"), sales["c2"].id: (5, 2, 3, "loyal"),
                   sales["c3"].id: (3, 1, 1, "potential"), sales["c5"].id: (1, 1, 2, "lost")}


def test_cohorts_by_acquisition_month_and_channel(db, sales):
    f = dataclasses.replace(period(), start=dt.date(2026, 4, 1))
    c = analytics.cohorts(db, actor=principal_of(db, sales["admin"]), filters=f)
    # c1 first bought in April (guide_qr) and again in May and June; c5 in May (store_qr), not again;
    # c2 (platform) and c3 (live) in June; c4's only order was refunded whole: no cohort
    assert [(r.month.isoformat(), r.customers, r.retained, r.retention_bps) for r in c.rows] == [
        ("2026-04-01", 1, [1, 1], [10000, 10000]), ("2026-05-01", 1, [0], [0]), ("2026-06-01", 2, [], [])]
    assert [(r.customers, r.retained) for r in c.by_channel["social"]] == [(1, [1, 1]), (0, [0]), (0, [])]
    assert [(r.customers, r.retained) for r in c.by_channel["store"]] == [(0, [0, 0]), (1, [0]), (0, [])]
    assert [r.customers for r in c.by_channel["content"]] == [0, 0, 1]
    social = analytics.cohorts(db, actor=principal_of(db, sales["admin"]), filters=dataclasses.replace(f, channel="social"))
    assert [r.customers for r in social.rows] == [1, 0, 0]


def test_guide_leaderboard(db, sales):
    rows = analytics.leaderboard(db, actor=principal_of(db, sales["admin"]), filters=period())
    got = [(r.name, r.customers_owned, r.new_customers, r.orders, r.attributed_net_cents, r.buyers, r.repeat_buyers,
            r.repurchase_bps, r.tasks_done) for r in rows]
    # guide A: c1, c2 (c2 created 06-01); o3 + o2 + o7 = 32000; both bought again by 06-07
    # guide B: c3, c5; o4 kept 4000; neither bought twice
    assert got == [("导购A", 2, 1, 3, 32000, 2, 2, 10000, None), ("导购B", 2, 0, 1, 4000, 2, 0, 0, None)]
    mine = analytics.leaderboard(db, actor=principal_of(db, sales["guide_b"]), filters=period())
    assert [r.name for r in mine] == ["导购B"]


def test_funnel_overall_by_channel_and_store(db, sales):
    f = analytics.funnel(db, actor=principal_of(db, sales["admin"]), filters=period())
    # exposure v2 v3; view v1 v2 c1 c2; add_to_cart c4; order = pay = the 4 payers; repurchase c1 c2
    assert f.overall.counts == {"exposure": 2, "view": 4, "add_to_cart": 1, "order": 4, "pay": 4, "repurchase": 2}
    assert f.overall.conversion_bps == {"view": 20000, "add_to_cart": 2500, "order": 40000, "pay": 10000,
                                        "repurchase": 5000}
    by_channel = {r.key: r.counts for r in f.by_channel}
    # events without a touch are platform; payers by their first paid order's channel group. c4's pickup order
    # had no touch: its order event (written with the order) is platform, its payment the store's
    assert by_channel["platform"] == {"exposure": 2, "view": 4, "add_to_cart": 1, "order": 2, "pay": 1, "repurchase": 1}
    assert by_channel["store"] == {"exposure": 0, "view": 0, "add_to_cart": 0, "order": 0, "pay": 1, "repurchase": 0}
    assert by_channel["social"] == {"exposure": 0, "view": 0, "add_to_cart": 0, "order": 1, "pay": 1, "repurchase": 1}
    assert by_channel["store"]["pay"] == 1 and by_channel["content"]["pay"] == 1
    by_store = {r.key: r.counts for r in f.by_store}
    a, b = str(sales["store_a"].id), str(sales["store_b"].id)
    assert by_store[a] == {"exposure": 0, "view": 2, "add_to_cart": 0, "order": 2, "pay": 2, "repurchase": 2}
    assert by_store[b] == {"exposure": 0, "view": 0, "add_to_cart": 0, "order": 1, "pay": 1, "repurchase": 0}
    # anonymous visitors and c4 (no store)
    assert by_store[""] == {"exposure": 2, "view": 2, "add_to_cart": 1, "order": 1, "pay": 1, "repurchase": 0}


def test_rfm_for_one_channel_reads_only_its_orders(db, sales):
    # social orders only: c1 (o8, o1, o2 by guide QR) and c2 (o7, community)
    r = analytics.rfm(db, actor=principal_of(db, sales["admin"]), filters=period(channel="social"))
    got = {c.customer_id: (c.recency_days, c.frequency, c.monetary_cents, c.r, c.f, c.m, c.segment) for c in r.customers}
    assert got == {sales["c1"].id: (5, 3, 34000, 1, 3, 3, "at_risk"), sales["c2"].id: (0, 1, 7000, 3, 1, 1, "potential")}


def test_cohort_months_are_shanghai_months(db, sales):
    # given c6 first buys at 00:30 on 05-01 in Shanghai (still 04-30 in UTC) and again at 00:10 on 06-01
    # (05-31 in UTC)
    from siyu.core import clock
    from tests.analytics.conftest import at, paid_order
    from tests.factories.customers import make_customer

    with clock.frozen(at(2026, 4, 30)):
        c6 = make_customer(db, merchant=sales["merchant"], nickname="c6")
    paid_order(db, sales["merchant"], c6, when=at(2026, 5, 1, 0, 30), price_cents=1000)
    paid_order(db, sales["merchant"], c6, when=at(2026, 6, 1, 0, 10), price_cents=1000)
    f = dataclasses.replace(period(), start=dt.date(2026, 4, 1))
    c = analytics.cohorts(db, actor=principal_of(db, sales["admin"]), filters=f)
    # then May has c5 and c6, and c6 came back in June
    assert [(r.month.isoformat(), r.customers, r.retained) for r in c.rows] == [
        ("2026-04-01", 1, [1, 1]), ("2026-05-01", 2, [1]), ("2026-06-01", 2, [])]
