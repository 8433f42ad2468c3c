"""RFM of a period ending on a past day read from the nightly snapshot of that day (cut points, segment
counts and values, score distributions; the page of customers scored from their orders before the day's
end) gives the numbers computed from the orders (conftest.`sales`: refunds, sales at 23:59:59 and
00:00:30)."""

from __future__ import annotations

import datetime as dt
import importlib

from siyu.analytics import service as analytics
from siyu.analytics.service import aggregates
from siyu.analytics.service.common import Filters
from tests.analytics.conftest import END, START
from tests.factories.merchants import principal_of

rfm = importlib.import_module("siyu.analytics.service.rfm")



def paged_rfm(db, *, actor, filters, method: str, limit: int):
    """The RFM report and every page of its customers, read page by page."""
    r = analytics.rfm(db, actor=actor, filters=filters, method=method, customers_limit=limit)
    pages, after = [r.customers], r.next_cursor
    while after is not None:
        p = analytics.rfm(db, actor=actor, filters=filters, method=method, customers_after=after,
                          customers_limit=limit)
        pages.append(p.customers)
        after = p.next_cursor
    return r, pages

def test_a_past_period_read_from_its_snapshot_equals_the_computed_report(db, sales):
    m = sales["merchant"]
    admin = principal_of(db, sales["admin"])
    guide = principal_of(db, sales["guide_a"])
    cases = [(admin, {}), (guide, {}), (admin, {"store_id": sales["store_a"].id}),
             (admin, {"guide_id": sales["guide_b"].id}),
             (admin, {"store_id": sales["store_b"].id, "guide_id": sales["guide_b"].id}),
             (admin, {"store_id": sales["store_b"].id, "guide_id": sales["guide_a"].id})]  # nobody
    # periods ending 05-31 (o6 at 23:59:59 counts), 06-01 (o2 at 00:00:30 on 06-02 does not), 06-05 (o5
    # refunded whole), 06-07
    ends = [dt.date(2026, 5, 31), dt.date(2026, 6, 1), dt.date(2026, 6, 5), END]
    aggregates.rebuild(db, merchant_id=m.id)
    analytics.update_settings(db, actor=admin, rfm_thresholds={"r_days": [1, 3, 5, 6], "f_orders": [2, 3, 4, 5],
                                                                "m_cents": [5000, 10000, 20000, 30000]})

    def reports(method: str, limit: int = 100) -> list[tuple[str, list]]:
        out = []
        for end in ends:
            for actor, narrow in cases:
                f = Filters(start=START if end > START else end, end=end, **narrow)
                r, pages = paged_rfm(db, actor=actor, filters=f, method=method, limit=limit)
                out.append((r.source, [analytics.rfm_dict(r), pages]))
        return out

    # given every past period's report computed from the orders
    computed = {(method, limit): reports(method, limit) for method in rfm.METHODS for limit in (100, 1)}
    assert {src for v in computed.values() for src, _r in v} == {"computed"}
    assert sum(r[0]["scored_customers"] for _s, r in computed["quintiles", 100]) > 20
    # when the snapshots of the end days are written
    for end in ends:
        rfm.write_snapshot(db, merchant_id=m.id, day=end)
    # then the reports are read from them, with the same numbers and the same customers, page by page
    for (method, limit), want in computed.items():
        got = reports(method, limit)
        assert {src for src, _r in got} == {"snapshot"}
        assert [r for _s, r in got] == [r for _s, r in want]


def test_without_a_snapshot_of_the_end_day_the_report_is_computed(db, sales):
    m = sales["merchant"]
    admin = principal_of(db, sales["admin"])
    aggregates.rebuild(db, merchant_id=m.id)
    rfm.write_snapshot(db, merchant_id=m.id, day=dt.date(2026, 6, 6))
    assert analytics.rfm(db, actor=admin, filters=Filters(start=START, end=END)).source == "computed"
    assert analytics.rfm(db, actor=admin, filters=Filters(start=START, end=dt.date(2026, 6, 6))).source == "snapshot"
    # a channel of the whole merchant: its dimension's snapshot (test_rfm_dim_snapshots); a channel and a
    # campaign together, a period ending today, or a manager of several stores: computed
    assert analytics.rfm(db, actor=admin, filters=Filters(start=START, end=dt.date(2026, 6, 6),
                                                          channel="social")).source == "snapshot"
    assert analytics.rfm(db, actor=admin, filters=Filters(start=START, end=dt.date(2026, 6, 6), channel="social",
                                                          campaign="618")).source == "computed"
    assert analytics.rfm(db, actor=admin, filters=Filters(start=START, end=dt.date(2026, 6, 10))).source == "computed"
