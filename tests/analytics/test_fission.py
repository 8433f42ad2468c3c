"""Fission figures from real shares, touches and fission edges (attribution's record_touch)."""

from __future__ import annotations

from siyu.analytics import service as analytics
from siyu.analytics.service.common import Filters
from siyu.analytics.service.fission import trees_of
from siyu.attribution.service import shares
from siyu.core import clock
from tests.analytics.conftest import END, NOW, START, at
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, make_store, principal_of


def test_fission_shares_visits_k_factor_trees_and_top_sharers(db):
    # given c1 shares (spring, 06-02); n1, whom c1 brought, shares too (spring, 06-03); guide A's share
    # (no campaign: "page:0") dates from 05-20
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant, username="fi-boss")
    guide = make_staff(db, merchant=merchant, role="guide", store=make_store(db, merchant=merchant), username="fi-g")
    with clock.frozen(NOW):
        c1, n1, n2, n3, n4 = (make_customer(db, merchant=merchant, nickname=n) for n in ("c1", "n1", "n2", "n3", "n4"))

    def share(when, **kw):
        with clock.frozen(when):
            return shares.get_or_create_share(db, merchant_id=merchant.id, target_type="page", target_id=0, **kw)

    def touch(s, when, customer=None, visitor=None):
        shares.record_touch(db, merchant_id=merchant.id, channel=s.channel, share_code=s.code,
                            customer_id=customer.id if customer else None, visitor_id=visitor, at=when)

    s3 = share(at(2026, 5, 20), channel="guide_qr", sharer_staff_id=guide.id)
    s1 = share(at(2026, 6, 2), channel="moments", sharer_customer_id=c1.id, campaign="spring")
    touch(s1, at(2026, 5, 30), visitor="visitor-early1")  # before the period: not a visit of it
    touch(s1, at(2026, 6, 2, 13), customer=n1)
    touch(s1, at(2026, 6, 2, 14), visitor="visitor-anon01")
    s2 = share(at(2026, 6, 3), channel="chat", sharer_customer_id=n1.id, campaign="spring")
    touch(s1, at(2026, 6, 4), customer=n2)
    touch(s2, at(2026, 6, 5), customer=n3)
    touch(s3, at(2026, 6, 6), customer=n4)
    touch(s3, at(2026, 6, 6, 13), visitor="visitor-anon02")
    touch(s1, at(2026, 6, 8), customer=make_customer(db, merchant=merchant))  # after the period
    # when
    r = analytics.fission(db, actor=principal_of(db, admin), filters=Filters(start=START, end=END))
    # then 2 shares created, 3 active (s3 visited), 6 visits; 4 new customers, 3 of them by customers
    # (c1: n1 n2; n1: n3) whose sharers are c1 and n1: K = 3 / 2
    assert (r.shares, r.active_shares, r.visits, r.visits_per_share_bps) == (2, 3, 6, 20000)
    assert (r.new_customers, r.new_by_customers, r.sharing_customers, r.k_factor_bps) == (4, 3, 2, 15000)
    assert [(t.root_customer_id, t.size, t.depth, t.width) for t in r.trees] == [(c1.id, 4, 2, 2)]
    assert [(s.kind, s.id, s.shares, s.visits, s.new_customers) for s in r.top_sharers] == [
        ("customer", c1.id, 1, 3, 2), ("staff", guide.id, 0, 2, 1), ("customer", n1.id, 1, 1, 1)]
    assert [(c.campaign, c.shares, c.visits, c.new_customers, c.sharing_customers, c.k_factor_bps)
            for c in r.campaigns] == [("spring", 2, 4, 3, 2, 15000), ("page:0", 0, 2, 1, 0, None)]
    spring = analytics.fission(db, actor=principal_of(db, admin), filters=Filters(start=START, end=END,
                                                                                  campaign="spring"))
    assert (spring.shares, spring.visits, spring.new_customers, spring.k_factor_bps) == (2, 4, 3, 15000)


def test_trees_depth_and_width():
    # 1 -> 2, 3, 4; 2 -> 5; 5 -> 6; 10 -> 11 (a second tree); a self-edge is ignored
    edges = [(2, 1), (3, 1), (4, 1), (5, 2), (6, 5), (11, 10), (7, 7)]
    assert [(t.root_customer_id, t.size, t.depth, t.width) for t in trees_of(edges)] == [(1, 6, 3, 3), (10, 2, 1, 1)]
