"""RFM narrowed to a channel or a campaign read from the nightly snapshot of a dimension (`RfmSnapshot.dim`,
the whole merchant scored within one channel group, touch channel or campaign): a past period's report and
the trend equal the ones computed from the dimension rows and the orders, and a dimension's rows never
reach the report of every order (test_rfm_dims.`campaigns`: conftest.`sales` plus campaign orders,
refunds whole and partial, a sale at 23:59:59)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib

import pytest
from sqlalchemy import delete, select, update

from siyu.analytics import service as analytics
from siyu.analytics.models import RfmSnapshot
from siyu.analytics.service import aggregates
from siyu.analytics.service.common import Filters
from siyu.core import clock
from tests.analytics.conftest import END, START
from tests.analytics.test_rfm_dims import FILTERS, TODAY, campaigns  # noqa: F401 (the fixture)
from tests.analytics.test_rfm_past import paged_rfm
from tests.factories.merchants import principal_of

rfm = importlib.import_module("siyu.analytics.service.rfm")
THRESHOLDS = {"r_days": [1, 3, 5, 6], "f_orders": [2, 3, 4, 5], "m_cents": [2000, 5000, 10000, 20000]}


def snapshot_rows(db, merchant_id: int, *, dim: str | None = None) -> set[tuple]:
    t = RfmSnapshot
    stmt = select(t.day, t.basis, t.store_id, t.owner_id, t.dim, t.segment, t.customers, t.value_cents, t.scores
                  ).where(t.merchant_id == merchant_id)
    if dim is not None:
        stmt = stmt.where(t.dim == dim)
    return {(*r[:8], repr(r[8])) for r in db.execute(stmt)}


@pytest.mark.parametrize("per_pass", [None, (1, 2)])
def test_the_dimensions_totals_at_once_equal_each_dimensions(db, campaigns, monkeypatch, per_pass):  # noqa: F811
    m = campaigns["merchant"].id
    if per_pass is not None:  # a pass per late row, at most two dimensions each
        monkeypatch.setattr(aggregates, "DIMS_LATE_ROWS_PER_PASS", per_pass[0])
        monkeypatch.setattr(aggregates, "DIMS_PER_PASS", per_pass[1])
    aggregates.rebuild(db, merchant_id=m)
    dims = aggregates.dim_names(db, merchant_id=m)
    assert dims == sorted(dims) and {"g:social", "c:moments", "k:618", "k:spring"} <= set(dims)
    assert not any(d == "k:" for d in dims)  # an empty campaign is none
    for day in (dt.date(2026, 4, 30), dt.date(2026, 5, 31), START, dt.date(2026, 6, 5), END, dt.date(2026, 6, 9)):
        until = clock.local_day_bounds(day)[1]
        got = list(aggregates.dims_totals_as_of(db, merchant_id=m, dims=dims, until=until))
        assert [d for d, _t in got] == dims
        assert dict(got) == {d: aggregates.dim_totals_as_of(db, merchant_id=m, dim=d, until=until) for d in dims}
    # as of 06-09: "618" is c1's 06-08 5000 and c3's 06-09 23:59:59 2 x 2500 with one unit refunded (c2's
    # order refunded whole does not count)
    got = dict(aggregates.dims_totals_as_of(db, merchant_id=m, dims=["k:618"],
                                            until=clock.local_day_bounds(dt.date(2026, 6, 9))[1]))
    assert {cid: (n, cents) for cid, (_last, n, cents) in got["k:618"].items()} == {
        campaigns["c1"].id: (1, 5000), campaigns["c3"].id: (1, 2500)}


def test_a_dimensions_snapshot_rows(db, campaigns):  # noqa: F811
    m = campaigns["merchant"].id
    aggregates.rebuild(db, merchant_id=m)
    rfm.write_snapshot(db, merchant_id=m, day=dt.date(2026, 6, 9))
    t = RfmSnapshot
    # the summary row of "618" as of 06-09: c1 5000 and c3 2500
    assert tuple(db.execute(select(t.customers, t.value_cents).where(
        t.merchant_id == m, t.dim == "k:618", t.basis == "quintiles", t.segment == "")).one()) == (2, 7500)
    # a dimension's rows are the whole merchant's only
    assert set(db.scalars(select(t.store_id + t.owner_id).where(t.merchant_id == m, t.dim != ""))) == {0}
    # as of 06-07 "618" had no order: its summary alone, nobody scored (its trend reads zeros)
    rfm.write_snapshot(db, merchant_id=m, day=END)
    assert {tuple(r) for r in db.execute(select(t.basis, t.segment, t.customers, t.value_cents).where(
        t.merchant_id == m, t.day == END, t.dim == "k:618"))} == {
        ("quintiles", "", 0, 0), (rfm.basis_of("thresholds", None), "", 0, 0)}
    assert rfm.snapshot_days(db, merchant_id=m, since=START) == {END, dt.date(2026, 6, 9)}
    # written again: replaced, not added to
    before = snapshot_rows(db, m)
    rfm.write_snapshot(db, merchant_id=m, day=END)
    assert snapshot_rows(db, m) == before


def test_a_past_period_of_a_dimension_read_from_its_snapshot_equals_the_computed_report(db, campaigns,  # noqa: F811
                                                                                       monkeypatch):
    m = campaigns["merchant"].id
    admin = principal_of(db, campaigns["admin"])
    guide = principal_of(db, campaigns["guide_a"])
    # periods ending 05-31, 06-01, 06-05 (c4's order refunded whole), 06-07 and 06-09 (c3's "618" order at
    # 23:59:59, c2's refunded whole); the trend as of the day before each
    ends = [dt.date(2026, 5, 31), START, dt.date(2026, 6, 5), END, dt.date(2026, 6, 9)]
    cases = [(actor, Filters(start=max(START, end - dt.timedelta(days=2)), end=end, **narrow, **dim))
             for end in ends for actor, narrow in [(admin, {}), (guide, {}), (admin, {"store_id": campaigns["store_a"].id})]
             for dim in FILTERS]
    aggregates.rebuild(db, merchant_id=m)
    analytics.update_settings(db, actor=admin, rfm_thresholds=THRESHOLDS)

    def reports(method: str, limit: int) -> list[tuple[str, str, list]]:
        out = []
        for actor, f in cases:
            r, pages = paged_rfm(db, actor=actor, filters=f, method=method, limit=limit)
            out.append((r.source, r.trend_source, [analytics.rfm_dict(r), pages]))
        return out

    # given every report computed (from the dimension rows and the orders)
    computed = {(method, limit): reports(method, limit) for method in rfm.METHODS for limit in (100, 3)}
    assert {(s, ts) for v in computed.values() for s, ts, _r in v} == {("computed", "computed")}
    assert sum(r[0]["scored_customers"] for _s, _ts, r in computed["quintiles", 100]) > 40
    # when the snapshots of the end days and of the days before the periods are written
    for day in {f.end for _a, f in cases} | {f.start - dt.timedelta(days=1) for _a, f in cases}:
        rfm.write_snapshot(db, merchant_id=m, day=day)
    with_rows = set(db.scalars(select(RfmSnapshot.dim).where(RfmSnapshot.merchant_id == m)))
    # then the whole merchant's reports of a dimension are read from them, the others computed, all with
    # the same numbers and the same customers page by page
    for (method, limit), want in computed.items():
        got = reports(method, limit)
        for (actor, f), (source, trend_source, _r) in zip(cases, got, strict=True):
            dim = aggregates.dim_of(f.channel, f.campaign)
            snap = actor is admin and f.store_id is None
            end_dim = dim in with_rows and db.scalar(select(RfmSnapshot.id).where(
                RfmSnapshot.merchant_id == m, RfmSnapshot.day == f.end, RfmSnapshot.dim == dim).limit(1))
            assert source == ("snapshot" if snap and end_dim else "computed"), (f, source)
            before = db.scalar(select(RfmSnapshot.id).where(
                RfmSnapshot.merchant_id == m, RfmSnapshot.day == f.start - dt.timedelta(days=1),
                RfmSnapshot.dim == dim).limit(1))
            assert trend_source == ("snapshot" if snap and before else "computed"), (f, trend_source)
        assert [r for _s, _ts, r in got] == [r for _s, _ts, r in want]
    assert ("snapshot", "snapshot") in {(s, ts) for s, ts, _r in reports("quintiles", 100)}
    # and a dimension read from its snapshots never groups the dimension's orders per customer
    monkeypatch.setattr(aggregates, "dim_totals_as_of", None)
    for end in ends:
        f = Filters(start=max(START, end - dt.timedelta(days=2)), end=end, campaign="spring")
        assert analytics.rfm(db, actor=admin, filters=f).source == "snapshot"


def test_the_trend_of_a_dimension_read_from_its_snapshot_equals_the_computed_trend(db, campaigns):  # noqa: F811
    m = campaigns["merchant"].id
    admin = principal_of(db, campaigns["admin"])
    aggregates.rebuild(db, merchant_id=m)
    # periods ending today (scored from the rows as they are), the trend as of 05-31, 06-05, 06-07, 06-08
    starts = [START, dt.date(2026, 6, 6), dt.date(2026, 6, 8), dt.date(2026, 6, 9)]
    cases = [Filters(start=start, end=TODAY, **dim) for start in starts for dim in FILTERS]

    def reports(method: str) -> list[tuple[str, dict]]:
        return [(r.trend_source, analytics.rfm_dict(r, with_customers=True)) for r in (
            analytics.rfm(db, actor=admin, filters=f, method=method) for f in cases)]

    computed = {method: reports(method) for method in rfm.METHODS}
    assert {ts for v in computed.values() for ts, _r in v} == {"computed"}
    for start in starts:
        rfm.write_snapshot(db, merchant_id=m, day=start - dt.timedelta(days=1))
    for method in rfm.METHODS:
        got = reports(method)
        assert [r for _ts, r in got] == [r for _ts, r in computed[method]]
        sources = {f.channel or f.campaign: ts for f, (ts, _r) in zip(cases, got, strict=True)}
        assert sources["social"] == sources["guide_qr"] == sources["spring"] == "snapshot"
        assert sources["nowhere"] == sources["none-such"] == "computed"  # no such dimension
    # "618" as of 06-08 (period 06-09..06-10): c1 alone, then 06-10 c1 and c3 (c2 refunded whole)
    r = analytics.rfm(db, actor=admin, filters=Filters(start=dt.date(2026, 6, 9), end=TODAY, campaign="618"))
    assert r.trend_source == "snapshot"
    assert (sum(s.previous_customers for s in r.segments), r.scored) == (1, 2)
    # a channel and a campaign together, or a guide's customers in a channel: computed
    both = Filters(start=dt.date(2026, 6, 9), end=TODAY, channel="guide_qr", campaign="618")
    assert analytics.rfm(db, actor=admin, filters=both).trend_source == "computed"
    guide = principal_of(db, campaigns["guide_a"])
    f = Filters(start=dt.date(2026, 6, 9), end=TODAY, channel="social")
    assert analytics.rfm(db, actor=guide, filters=f).trend_source == "computed"
    assert analytics.rfm(db, actor=admin, filters=dataclasses.replace(
        f, guide_id=campaigns["guide_a"].id)).trend_source == "computed"


def test_a_dimensions_rows_never_reach_the_report_of_every_order(db, campaigns, monkeypatch):  # noqa: F811
    m = campaigns["merchant"].id
    admin = principal_of(db, campaigns["admin"])
    guide = principal_of(db, campaigns["guide_a"])
    aggregates.rebuild(db, merchant_id=m)
    days = [dt.date(2026, 5, 31), END, dt.date(2026, 6, 8), dt.date(2026, 6, 9)]
    # given the snapshots written without the dimensions (as before they were kept)
    with monkeypatch.context() as patch:
        patch.setattr(aggregates, "dims_usable", lambda *_a, **_k: False)
        for day in days:
            rfm.write_snapshot(db, merchant_id=m, day=day)
    without = snapshot_rows(db, m)
    assert {r[4] for r in without} == {""}
    cases = [(a, Filters(start=start, end=end, **narrow)) for a, narrow in [
        (admin, {}), (guide, {}), (admin, {"store_id": campaigns["store_b"].id})]
        for start, end in [(START, END), (dt.date(2026, 6, 9), dt.date(2026, 6, 9)), (dt.date(2026, 6, 9), TODAY)]]

    def reports() -> list:
        return [(r.source, r.trend_source, analytics.rfm_dict(r, with_customers=True)) for r in (
            analytics.rfm(db, actor=a, filters=f, method=method) for a, f in cases for method in rfm.METHODS)]

    want = reports()
    assert {(s, ts) for s, ts, _r in want} >= {("snapshot", "snapshot"), ("computed", "snapshot")}
    # when they are written with the dimensions: the rows of every order are the same
    for day in days:
        rfm.write_snapshot(db, merchant_id=m, day=day)
    assert snapshot_rows(db, m, dim="") == without
    assert len(snapshot_rows(db, m)) > len(without)
    # and even a dimension's rows saying otherwise change no report of every order
    t = RfmSnapshot
    db.execute(update(t).where(t.merchant_id == m, t.dim != "").values(
        customers=t.customers + 1000, value_cents=t.value_cents + 1000,
        scores={"cuts": {"r": [1, 1, 1, 1], "f": [9, 9, 9, 9], "m": [1, 1, 1, 1]},
                "distribution": {"r": [7] * 5, "f": [7] * 5, "m": [7] * 5}}))
    db.flush()
    assert reports() == want
    assert rfm.snapshot_days(db, merchant_id=m, since=START) == {END, dt.date(2026, 6, 8), dt.date(2026, 6, 9)}
    # nor does the report of every order's day reach a dimension: without the dimension's rows it is computed
    db.execute(delete(t).where(t.merchant_id == m, t.dim != ""))
    db.flush()
    r = analytics.rfm(db, actor=admin, filters=Filters(start=dt.date(2026, 6, 9), end=dt.date(2026, 6, 9),
                                                       channel="social"))
    assert (r.source, r.trend_source) == ("computed", "computed")
