"""Fission figures on a hand-built data set, with exact values.

    guide G shares product P          -> A (first shared touch: G's share)
    A shares P (sA), and the store for the "spring" campaign (sA2)
        sA  -> B, C, and anonymous visitors v1 (twice) and v2
        sA2 -> E
    B shares P (sB)
        sB  -> C (later: C stays A's), D
    F only came directly: nobody brought F.
    Payments: B 10.00 (last touch sA), C 25.00 (last touch sB), E 7.00 (last touch sA2), F 3.00 (direct).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy.orm import Session

from siyu.attribution.service import fission, funnel
from siyu.core import clock
from siyu.core.auth import Role
from tests.factories.attribution import make_share, make_touch
from tests.factories.catalog import make_product
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, make_store

T0 = dt.datetime(2026, 4, 1, 2, 0, tzinfo=dt.UTC)


def at(hours: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


@dataclasses.dataclass
class Data:
    merchant: object
    guide: object
    people: dict[str, object]
    shares: dict[str, object]
    product: object

    def id(self, name: str) -> int:
        return self.people[name].id  # type: ignore[attr-defined]


@pytest.fixture
def data(db: Session) -> Data:
    merchant = make_merchant(db)
    store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store, name="导购甲")
    product = make_product(db, merchant=merchant)
    people = {n: make_customer(db, merchant=merchant, nickname=n) for n in "ABCDEF"}
    with clock.frozen(T0):
        s = {
            "sG": make_share(db, merchant=merchant, target_type="product", target_id=product.id, staff=guide),
            "sA": make_share(db, merchant=merchant, target_type="product", target_id=product.id, customer=people["A"]),
            "sA2": make_share(db, merchant=merchant, target_type="store", target_id=store.id, customer=people["A"],
                              channel="moments", campaign="spring"),
            "sB": make_share(db, merchant=merchant, target_type="product", target_id=product.id, customer=people["B"]),
        }
    make_touch(db, merchant=merchant, share=s["sG"], customer=people["A"], at=at(1))
    make_touch(db, merchant=merchant, share=s["sA"], customer=people["B"], at=at(2))
    make_touch(db, merchant=merchant, share=s["sA"], customer=people["C"], at=at(3))
    make_touch(db, merchant=merchant, share=s["sB"], customer=people["C"], at=at(4))
    make_touch(db, merchant=merchant, share=s["sB"], customer=people["D"], at=at(5))
    make_touch(db, merchant=merchant, share=s["sA2"], customer=people["E"], at=at(6))
    make_touch(db, merchant=merchant, share=s["sA"], visitor_id="visitor-v1-xx", at=at(7))
    make_touch(db, merchant=merchant, share=s["sA"], visitor_id="visitor-v1-xx", at=at(8))
    make_touch(db, merchant=merchant, share=s["sA"], visitor_id="visitor-v2-xx", at=at(9))
    make_touch(db, merchant=merchant, customer=people["F"], at=at(10))
    for order_id, (name, cents) in enumerate([("B", 1000), ("C", 2500), ("E", 700), ("F", 300)], start=1):
        funnel.record_event(db, merchant_id=merchant.id, kind="pay", customer_id=people[name].id, order_id=order_id,
                            amount_cents=cents, at=at(20 + order_id))
    return Data(merchant=merchant, guide=guide, people=people, shares=s, product=product)


def figures(row) -> tuple:
    return (row.name, row.shares, row.visits, row.unique_visitors, row.new_customers, row.orders, row.gmv_cents)


def test_customer_sharers_leaderboard(db: Session, data: Data) -> None:
    rows = fission.sharer_stats(db, merchant_id=data.merchant.id, kind="customer")
    assert [figures(r) for r in rows] == [
        # name, shares, visits, unique visitors, new customers, paid orders, GMV
        ("A", 2, 6, 5, 3, 2, 1700),
        ("B", 1, 2, 2, 1, 1, 2500),
    ]


def test_staff_sharers_leaderboard(db: Session, data: Data) -> None:
    rows = fission.sharer_stats(db, merchant_id=data.merchant.id, kind="staff")
    assert [figures(r) for r in rows] == [("导购甲", 1, 1, 1, 1, 0, 0)]


def test_a_period_counts_only_what_happened_in_it(db: Session, data: Data) -> None:
    rows = fission.sharer_stats(db, merchant_id=data.merchant.id, kind="customer", start=at(4), end=at(7))
    # B's shares were made before the period; in it: C and D through sB, E through sA2.
    # Ranked by new customers, then visits.
    assert [figures(r) for r in rows] == [("B", 0, 2, 2, 1, 0, 0), ("A", 0, 1, 1, 1, 0, 0)]


def test_share_figures(db: Session, data: Data) -> None:
    s = data.shares
    stats = fission.share_stats(db, merchant_id=data.merchant.id, share_ids=[s["sA"].id, s["sA2"].id, s["sB"].id])
    assert (stats[s["sA"].id].visits, stats[s["sA"].id].unique_visitors, stats[s["sA"].id].new_customers,
            stats[s["sA"].id].orders, stats[s["sA"].id].gmv_cents) == (5, 4, 2, 1, 1000)
    assert (stats[s["sA2"].id].visits, stats[s["sA2"].id].new_customers, stats[s["sA2"].id].gmv_cents) == (1, 1, 700)
    assert (stats[s["sB"].id].visits, stats[s["sB"].id].new_customers, stats[s["sB"].id].gmv_cents) == (2, 1, 2500)


def names(node) -> object:
    return (node.name, [names(c) for c in node.children]) if node.children else node.name


def test_a_customers_tree(db: Session, data: Data) -> None:
    tree = fission.customer_tree(db, merchant_id=data.merchant.id, customer_id=data.id("A"))
    assert (tree.depth, tree.width, tree.size) == (2, 3, 4)
    assert [names(r) for r in tree.roots] == [("A", [("B", ["D"]), "C", "E"])]
    leaf = fission.customer_tree(db, merchant_id=data.merchant.id, customer_id=data.id("F"))
    assert (leaf.depth, leaf.width, leaf.size, leaf.roots[0].children) == (0, 0, 0, [])


def test_a_campaigns_tree(db: Session, data: Data) -> None:
    product = fission.campaign_tree(db, merchant_id=data.merchant.id, campaign=f"product:{data.product.id}")
    assert (product.depth, product.width, product.size) == (3, 2, 4)
    assert [names(r) for r in product.roots] == [("导购甲", [("A", [("B", ["D"]), "C"])])]
    assert product.roots[0].kind == "staff"
    spring = fission.campaign_tree(db, merchant_id=data.merchant.id, campaign="spring")
    assert (spring.depth, spring.width, spring.size) == (1, 1, 1)
    assert [names(r) for r in spring.roots] == [("A", ["E"])]
    assert fission.campaigns(db, merchant_id=data.merchant.id) == [(f"product:{data.product.id}", 4), ("spring", 1)]


def test_who_a_customer_brought(db: Session, data: Data) -> None:
    rows = fission.brought_by(db, merchant_id=data.merchant.id, customer_id=data.id("A"))
    assert [(r["nickname"], r["at"], r["brought"]) for r in rows] == [("B", at(2), 1), ("C", at(3), 0), ("E", at(6), 0)]


def test_k_factor(db: Session, data: Data) -> None:
    whole = fission.k_factor(db, merchant_id=data.merchant.id, start=T0, end=at(48))
    # B, C, D, E brought by customers; A and B made shares: 4 / 2.
    assert (whole["new_customers"], whole["sharing_customers"], whole["k_bps"], whole["k_text"]) == (4, 2, 20000, "2.00")
    later = fission.k_factor(db, merchant_id=data.merchant.id, start=at(1), end=at(48))
    # No share was made after T0: nobody shared in that period.
    assert (later["new_customers"], later["sharing_customers"], later["k_bps"]) == (4, 0, 0)
