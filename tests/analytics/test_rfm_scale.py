"""RFM at scale: the SQL path over the per-customer rows gives exactly the numbers of the Python path,
the trend read from the nightly snapshot equals the trend computed from the orders, and customers and
segment members come page by page (conftest.`sales`: refunds, sales at 23:59:59 and 00:00:30)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import random

import pytest
from sqlalchemy import insert, select

from siyu.analytics import service as analytics
from siyu.analytics.models import AggregateState, CustomerPurchaseStats, RfmSnapshot
from siyu.analytics.service import aggregates
from siyu.analytics.service.common import Filters
from siyu.core import clock
from siyu.core.auth import Role
from siyu.customers.models import Customer
from tests.analytics.conftest import END, NOW, START
from tests.factories.customers import make_customer
from tests.factories.merchants import auth_headers, make_merchant, make_staff, make_store, principal_of

# the module (the package re-exports its function `rfm` under the same name)
rfm = importlib.import_module("siyu.analytics.service.rfm")
TODAY = dt.date(2026, 6, 10)


@pytest.fixture
def frozen():
    """Now is conftest.NOW (10:00 on 06-10 in Shanghai), as in `sales`."""
    with clock.frozen(NOW):
        yield


def segments(r: rfm.RfmReport) -> dict[str, tuple[int, int, int]]:
    return {s.segment: (s.customers, s.value_cents, s.previous_customers) for s in r.segments}


def test_snapshot_trend_equals_the_computed_trend(db, sales):
    m = sales["merchant"]
    admin = principal_of(db, sales["admin"])
    guide = principal_of(db, sales["guide_a"])
    cases = [(admin, {}), (guide, {}), (admin, {"store_id": sales["store_a"].id}),
             (admin, {"guide_id": sales["guide_b"].id}),
             (admin, {"store_id": sales["store_b"].id, "guide_id": sales["guide_b"].id})]
    # given periods whose day before is 05-31 (o6 at 23:59:59 counts), 06-01 (o2 at 00:00:30 on 06-02 does
    # not), 06-03 (o4 then half refunded), 06-05 (o5 refunded whole), all ending today, both methods
    starts = [START, dt.date(2026, 6, 2), dt.date(2026, 6, 4), dt.date(2026, 6, 6)]

    def reports(method: str) -> list[tuple[str, dict]]:
        out = []
        for start in starts:
            for actor, narrow in cases:
                r = analytics.rfm(db, actor=actor, filters=Filters(start=start, end=TODAY, **narrow), method=method)
                out.append((r.trend_source, segments(r)))
        return out

    aggregates.rebuild(db, merchant_id=m.id)
    computed = {method: reports(method) for method in rfm.METHODS}
    assert {src for method in rfm.METHODS for src, _s in computed[method]} == {"computed"}
    # when the snapshots of those days are written (from the per-customer rows: c1, c2 bought after 05-31)
    for start in starts:
        rfm.write_snapshot(db, merchant_id=m.id, day=start - dt.timedelta(days=1))
    # then the trend comes from them, with the same numbers
    for method in rfm.METHODS:
        snap = reports(method)
        assert {src for src, _s in snap} == {"snapshot"}
        assert [s for _src, s in snap] == [s for _src, s in computed[method]]
    # the hand-computed trend of test_views: as of 05-31 c1 at risk, c5 potential (quintiles)
    first = computed["quintiles"][0][1]
    assert {k: v[2] for k, v in first.items() if v[2]} == {"at_risk": 1, "potential": 1}
    # a guide's quintiles are cut among their own customers: as of 05-31 only c1 is scored, every cut is
    # their own value and ties score lower: R1 F1 M1, lost (in the merchant's quintiles c1 is at risk)
    mine = rfm.read_snapshot(db, actor=guide, store_id=None, guide_id=None, day=dt.date(2026, 5, 31),
                             basis="quintiles")
    assert {k: v for k, v in mine.items() if v} == {"lost": 1}


def test_snapshot_of_a_merchant_not_built_is_read_from_the_orders(db, sales):
    m = sales["merchant"]
    admin = principal_of(db, sales["admin"])
    f = Filters(start=START, end=END)
    computed = analytics.rfm(db, actor=admin, filters=f)
    # given the snapshot of 05-31 written without aggregates (from the orders)
    assert rfm.write_snapshot(db, merchant_id=m.id, day=dt.date(2026, 5, 31)) > 0
    snap = analytics.rfm(db, actor=admin, filters=f)
    assert (computed.trend_source, snap.trend_source) == ("computed", "snapshot")
    assert segments(snap) == segments(computed)
    # the marker row: 2 customers scored as of 05-31 (c1 14000, c5 6000)
    marker = db.execute(select(RfmSnapshot.customers, RfmSnapshot.value_cents).where(
        RfmSnapshot.merchant_id == m.id, RfmSnapshot.segment == "", RfmSnapshot.basis == "quintiles",
        RfmSnapshot.store_id == 0, RfmSnapshot.owner_id == 0)).one()
    assert tuple(marker) == (2, 20000)
    # a channel filter never reads the snapshot (its trend counts only that channel's orders)
    social = analytics.rfm(db, actor=admin, filters=dataclasses.replace(f, channel="social"))
    assert social.trend_source == "computed"
    # thresholds changed since the snapshot: its basis no longer matches, the trend is computed
    analytics.update_settings(db, actor=admin, rfm_method="thresholds",
                              rfm_thresholds={"r_days": [1, 3, 5, 6], "f_orders": [2, 3, 4, 5],
                                              "m_cents": [5000, 10000, 20000, 30000]})
    assert analytics.rfm(db, actor=admin, filters=f).trend_source == "computed"


def test_the_job_writes_yesterday_then_fills_in_missing_days(db, sales):
    m = sales["merchant"]
    # not built: nothing to do
    assert rfm.advance_snapshots(db, today=TODAY) == {}
    aggregates.rebuild(db, merchant_id=m.id)
    # when the job runs on 06-10 (twice)
    assert rfm.advance_snapshots(db, today=TODAY) == {m.id: [dt.date(2026, 6, 9), dt.date(2026, 6, 8)]}
    for day in (7, 6, 5):
        assert rfm.advance_snapshots(db, today=TODAY) == {m.id: [dt.date(2026, 6, day)]}
    # then a period starting 06-08 reads its trend (as of 06-07) from the snapshot
    assert rfm.snapshot_days(db, merchant_id=m.id, since=dt.date(2026, 6, 1)) == {
        dt.date(2026, 6, d) for d in range(5, 10)}
    admin = principal_of(db, sales["admin"])
    r = analytics.rfm(db, actor=admin, filters=Filters(start=dt.date(2026, 6, 8), end=TODAY))
    assert r.trend_source == "snapshot"
    # as of 06-07 (quintiles over c1 c2 c3 c5): the report of test_views, its "now" column
    assert {k: v[2] for k, v in segments(r).items() if v[2]} == {"loyal": 1, "potential": 1, "at_risk": 1,
                                                                  "lost": 1}


def _stats_merchant(db, *, customers: int, seed: int):
    """A merchant with `customers` customers over two stores and three guides, and their per-customer rows
    written directly (ties on purpose; last purchases on both sides of Shanghai midnights), marked built."""
    rnd = random.Random(seed)
    merchant = make_merchant(db)
    stores = [make_store(db, merchant=merchant, name=f"S{i}") for i in range(2)]
    guides = [make_staff(db, merchant=merchant, role=Role.GUIDE, store=stores[i % 2], username=f"rfm-g{seed}-{i}")
              for i in range(3)]
    admin = make_staff(db, merchant=merchant, username=f"rfm-admin-{seed}")
    rows = []
    for i in range(customers):
        owner = guides[i % 4] if i % 4 < 3 else None
        c = make_customer(db, merchant=merchant, owner=owner, store=stores[i % 2] if owner is None else None)
        if i % 7 == 6:
            continue  # never bought
        midnight = dt.datetime.combine(TODAY - dt.timedelta(days=rnd.choice([0, 1, 2, 3, 5, 8, 13, 40, 41, 200])),
                                       dt.time(), tzinfo=clock.SHANGHAI).astimezone(dt.UTC)
        last = midnight + dt.timedelta(seconds=rnd.choice([0, 1, 3600, 86399]))
        if last > NOW:
            last = NOW - dt.timedelta(seconds=1)
        kept = rnd.choice([1, 1, 1, 2, 2, 3, 5, 9])
        refunded_whole = i % 11 == 10
        rows.append({"merchant_id": merchant.id, "customer_id": c.id, "paid_orders": kept + 1,
                     "kept_orders": 0 if refunded_whole else kept,
                     "kept_cents": 0 if refunded_whole else kept * rnd.choice([1000, 2500, 2500, 9900]),
                     "first_paid_at": None if refunded_whole else last - dt.timedelta(days=30),
                     "last_paid_at": None if refunded_whole else last})
    db.execute(insert(CustomerPurchaseStats), rows)
    db.add(AggregateState(merchant_id=merchant.id, built_at=NOW, people_through=TODAY - dt.timedelta(days=1)))
    db.flush()
    return merchant, admin, guides, stores, {r["customer_id"]: r for r in rows if r["kept_orders"]}


def _expected(rows: dict[int, dict], ids: set[int] | None, *, as_of: dt.date, method: str, thresholds=None):
    totals = {cid: (r["last_paid_at"], r["kept_orders"], r["kept_cents"]) for cid, r in rows.items()
              if ids is None or cid in ids}
    return rfm.score(totals, as_of=as_of, method=method, thresholds=thresholds or {})


def test_sql_scores_equal_the_python_scores_with_ties_midnights_and_scopes(db, frozen):
    merchant, admin_staff, guides, stores, rows = _stats_merchant(db, customers=160, seed=9)
    admin = principal_of(db, admin_staff)
    guide = principal_of(db, guides[1])
    owners = {cid: (o, s) for cid, o, s in db.execute(select(Customer.id, Customer.owner_id, Customer.store_id).where(
        Customer.merchant_id == merchant.id))}
    thresholds = {"r_days": [0, 2, 8, 40], "f_orders": [2, 3, 5, 9], "m_cents": [2500, 5000, 9900, 20000]}
    cases = [(admin, {}, None), (guide, {}, {c for c, (o, _s) in owners.items() if o == guides[1].id}),
             (admin, {"store_id": stores[0].id}, {c for c, (_o, s) in owners.items() if s == stores[0].id}),
             (admin, {"guide_id": guides[2].id}, {c for c, (o, _s) in owners.items() if o == guides[2].id})]
    for method in rfm.METHODS:
        if method == "thresholds":
            analytics.update_settings(db, actor=admin, rfm_method="thresholds", rfm_thresholds=thresholds)
        for actor, narrow, ids in cases:
            f = Filters(start=TODAY - dt.timedelta(days=6), end=TODAY, **narrow)
            # when the report is computed in SQL (built, ending today) with every customer on one page
            r = analytics.rfm(db, actor=actor, filters=f, method=method, customers_limit=1000)
            # then it is the Python scoring of the same rows
            want, cuts = _expected(rows, ids, as_of=TODAY, method=method, thresholds=thresholds)
            assert r.customers == want
            assert r.cuts == cuts and r.scored == len(want)
            assert r.next_cursor is None
            for s in r.segments:
                members = [c for c in want if c.segment == s.segment]
                assert (s.customers, s.value_cents) == (len(members), sum(c.monetary_cents for c in members))
            for k in ("r", "f", "m"):
                assert r.distribution[k] == [sum(1 for c in want if getattr(c, k) == v) for v in range(1, 6)]
            assert len({c.segment for c in want}) >= 4  # the data set reaches several segments
            # and page by page (3 a page), the same customers in the same order
            paged, after = [], None
            while True:
                p = analytics.rfm(db, actor=actor, filters=f, method=method, customers_after=after, customers_limit=3)
                paged += p.customers
                if p.next_cursor is None:
                    break
                after = p.next_cursor
            assert paged == want


def test_saved_segment_members_come_page_by_page_and_the_csv_has_them_all(db, frozen):
    merchant, admin_staff, _guides, _stores, rows = _stats_merchant(db, customers=120, seed=4)
    admin = principal_of(db, admin_staff)
    want, _cuts = _expected(rows, None, as_of=TODAY, method="quintiles")
    by_segment: dict[str, list[int]] = {}
    for c in want:
        by_segment.setdefault(c.segment, []).append(c.customer_id)
    segment, ids = max(by_segment.items(), key=lambda kv: len(kv[1]))
    assert len(ids) > 5
    saved = analytics.save_segment(db, actor=admin, name="big", segment=segment)
    got, after = [], None
    while True:
        page = analytics.segment_members(db, saved.id, actor=admin, after=after, limit=4)
        assert page.total == len(ids)
        got += [c.customer_id for c in page.items]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert got == ids
    assert analytics.segment_member_ids(db, saved.id, actor=admin) == ids
    lines = "".join(analytics.member_csv(db, saved.id, actor=admin)).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("customer_id,nickname,phone")
    assert [int(line.split(",")[0]) for line in lines[1:]] == ids
    # a page past the end
    assert analytics.segment_members(db, saved.id, actor=admin, after=ids[-1]).items == []


def test_api_pages_customers_and_members(db, client, frozen):
    merchant, admin_staff, _guides, _stores, rows = _stats_merchant(db, customers=40, seed=2)
    h = auth_headers(db, admin_staff)
    q = f"start={TODAY - dt.timedelta(days=6)}&end={TODAY}"
    if True:
        first = client.get(f"/api/v1/admin/analytics/rfm?{q}&customers=true&customers_limit=5", headers=h).json()
        assert len(first["customers"]) == 5 and first["customers_next_cursor"] == str(first["customers"][-1]["customer_id"])
        rest = client.get(f"/api/v1/admin/analytics/rfm?{q}&customers=true&customers_limit=1000"
                          f"&customers_cursor={first['customers_next_cursor']}", headers=h).json()
        assert rest["customers_next_cursor"] is None
        assert [c["customer_id"] for c in first["customers"] + rest["customers"]] == sorted(rows)
        assert first["scored_customers"] == len(rows)
        # without customers=true none are listed
        assert "customers" not in client.get(f"/api/v1/admin/analytics/rfm?{q}", headers=h).json()
        bad = client.get(f"/api/v1/admin/analytics/rfm?{q}&customers=true&customers_cursor=x1", headers=h)
        assert bad.status_code == 422 and bad.json()["error"]["details"]["fields"]["customers_cursor"]
        seg = client.post("/api/v1/admin/analytics/segments", headers=h, json={"name": "all-lost", "segment": "lost"})
        members = client.get(f"/api/v1/admin/analytics/segments/{seg.json()['id']}/members?limit=2", headers=h).json()
        assert len(members["items"]) <= 2 and members["total"] >= len(members["items"])
