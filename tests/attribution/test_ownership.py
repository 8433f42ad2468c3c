"""Ownership: the binding rules (table-driven over sequences of touches, frozen clock), the history,
the owner kept in step, settings, the query functions other domains use."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.attribution.models.ownership import BindingHistory, CustomerBinding
from siyu.attribution.service import ownership
from siyu.core import clock
from siyu.core.auth import Role
from siyu.core.errors import PermissionDenied, ValidationFailed
from siyu.customers.models import Customer
from siyu.merchants import service as merchants
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, make_store, principal_of

T0 = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)


@dataclasses.dataclass
class World:
    merchant: object
    people: dict[str, object]

    def id(self, name: str) -> int:
        return self.people[name].id  # type: ignore[attr-defined]


def make_world(db: Session, *, guide_days: int | None = 15, referrer_days: int | None = 30) -> World:
    merchant = make_merchant(db)
    merchant.settings = {**merchant.settings, "guide_protection_days": guide_days,
                         "referrer_protection_days": referrer_days}
    store_a, store_b = make_store(db, merchant=merchant), make_store(db, merchant=merchant)
    people = {
        "admin": make_staff(db, merchant=merchant, role=Role.BRAND_ADMIN),
        "g1": make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_a, name="导购一"),
        "g2": make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_b, name="导购二"),
        "c": make_customer(db, merchant=merchant, nickname="新顾客"),
        "r1": make_customer(db, merchant=merchant, nickname="分享者一"),
        "r2": make_customer(db, merchant=merchant, nickname="分享者二"),
        "store_a": store_a, "store_b": store_b,
    }
    db.flush()
    return World(merchant=merchant, people=people)


def touch(db: Session, w: World, day: float, sharer: str | None, *, customer: str = "c") -> None:
    """A touch of `customer` on day `day` after T0, shared by a guide (g…), a customer (r…/c) or nobody."""
    staff = w.id(sharer) if sharer and sharer.startswith("g") else None
    sharing_customer = w.id(sharer) if sharer and not sharer.startswith("g") else None
    with clock.frozen(T0 + dt.timedelta(days=day)):
        ownership.apply_touch(db, merchant_id=w.merchant.id, customer_id=w.id(customer), touch_id=None,
                              channel="chat", sharer_staff_id=staff, sharer_customer_id=sharing_customer,
                              at=clock.now())


def names(w: World, *which: str) -> dict[int, str]:
    return {w.id(n): n for n in which}


# (id, guide days, referrer days, touches [(day, sharer)], guide, referrer, history [(kind, action)])
CASES = [
    ("first staff touch binds the guide", 15, 30, [(0, "g1")], "g1", None, [("guide", "bind")]),
    ("inside the period the binding is kept", 15, 30, [(0, "g1"), (14.9, "g2")], "g1", None, [("guide", "bind")]),
    ("after the period a new touch rebinds", 15, 30, [(0, "g1"), (15, "g2")], "g2", None,
     [("guide", "bind"), ("guide", "rebind")]),
    ("permanent never rebinds", None, 30, [(0, "g1"), (900, "g2")], "g1", None, [("guide", "bind")]),
    ("the bound guide's touch renews the period", 15, 30, [(0, "g1"), (10, "g1"), (20, "g2")], "g1", None,
     [("guide", "bind")]),
    ("…until the renewed period ends", 15, 30, [(0, "g1"), (10, "g1"), (25, "g2")], "g2", None,
     [("guide", "bind"), ("guide", "rebind")]),
    ("a touch older than the binding never rebinds", 15, 30, [(40, "g1"), (2, "g2")], "g1", None, [("guide", "bind")]),
    ("guide and referrer kinds are independent", 15, 30, [(0, "g1"), (1, "r1")], "g1", "r1",
     [("guide", "bind"), ("referrer", "bind")]),
    ("a referrer rebind leaves the guide alone", 15, 30, [(0, "g1"), (0, "r1"), (31, "r2")], "g1", "r2",
     [("guide", "bind"), ("referrer", "bind"), ("referrer", "rebind")]),
    ("each kind has its own period", 15, None, [(0, "g1"), (0, "r1"), (20, "g2"), (20, "r2")], "g2", "r1",
     [("guide", "bind"), ("referrer", "bind"), ("guide", "rebind")]),
    ("a customer sharer binds only the referrer", 15, 30, [(0, "r1")], None, "r1", [("referrer", "bind")]),
    ("a customer is never their own referrer", 15, 30, [(0, "c"), (1, "r1")], None, "r1", [("referrer", "bind")]),
    ("a touch without a sharer binds nothing", 15, 30, [(0, None), (1, None)], None, None, []),
]


@pytest.mark.parametrize(("case", "guide_days", "referrer_days", "touches", "guide", "referrer", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_binding_rules(db: Session, case: str, guide_days: int | None, referrer_days: int | None,
                       touches: list[tuple[float, str | None]], guide: str | None, referrer: str | None,
                       expected: list[tuple[str, str]]) -> None:
    # given
    w = make_world(db, guide_days=guide_days, referrer_days=referrer_days)
    mid, cid = w.merchant.id, w.id("c")
    # when
    for day, sharer in touches:
        touch(db, w, day, sharer)
    # then
    g = ownership.guide_binding(db, merchant_id=mid, customer_id=cid)
    assert (names(w, "g1", "g2").get(g.guide_id) if g else None) == guide
    assert names(w, "c", "r1", "r2").get(ownership.referrer_of(db, merchant_id=mid, customer_id=cid)) == referrer
    lines = db.scalars(select(BindingHistory).where(BindingHistory.customer_id == cid).order_by(BindingHistory.id)).all()
    assert [(h.kind, h.action) for h in lines] == expected
    customer = db.get(Customer, cid)
    db.refresh(customer)
    owner = w.people[guide] if guide else None
    assert customer.owner_id == (owner.id if owner else None)
    assert customer.store_id == (owner.store_id if owner else None)


def test_protection_window_is_exact(db: Session) -> None:
    # given: a 15-day guide binding made at T0
    w = make_world(db, guide_days=15)
    touch(db, w, 0, "g1")
    binding = ownership.guide_binding(db, merchant_id=w.merchant.id, customer_id=w.id("c"))
    # then: bound since T0, protected until T0 + 15 days, through the touch's channel
    assert (binding.bound_at, binding.protected_until, binding.channel) == (T0, T0 + dt.timedelta(days=15), "chat")
    assert binding.store_id == w.people["store_a"].id
    assert binding.protected_at(T0 + dt.timedelta(days=15) - dt.timedelta(seconds=1))
    assert not binding.protected_at(T0 + dt.timedelta(days=15))


def test_history_line_says_who_from_to_and_touch(db: Session) -> None:
    # given
    w = make_world(db, guide_days=15)
    touch(db, w, 0, "g1")
    # when: g2 touches after the period
    with clock.frozen(T0 + dt.timedelta(days=20)):
        ownership.apply_touch(db, merchant_id=w.merchant.id, customer_id=w.id("c"), touch_id=4242, channel="moments",
                              sharer_staff_id=w.id("g2"), sharer_customer_id=None, at=clock.now())
    # then
    line = db.scalars(select(BindingHistory).where(BindingHistory.action == "rebind")).one()
    g1, g2 = w.people["g1"], w.people["g2"]
    assert (line.from_guide_id, line.from_store_id, line.to_guide_id, line.to_store_id) == (g1.id, g1.store_id, g2.id,
                                                                                            g2.store_id)
    assert (line.touch_id, line.at, line.actor_type, line.merchant_id) == (4242, T0 + dt.timedelta(days=20), "system",
                                                                           w.merchant.id)
    assert line.reason == "touch after protection (moments)"


def test_no_referral_loop(db: Session) -> None:
    # given: r1 was brought by c
    w = make_world(db)
    touch(db, w, 0, "c", customer="r1")
    assert ownership.referrer_of(db, merchant_id=w.merchant.id, customer_id=w.id("r1")) == w.id("c")
    # when: r1 shares back to c
    touch(db, w, 1, "r1", customer="c")
    # then: c is not bound to r1 (no A↔B loop), and nothing was logged for c
    assert ownership.referrer_of(db, merchant_id=w.merchant.id, customer_id=w.id("c")) is None
    assert db.scalars(select(BindingHistory).where(BindingHistory.customer_id == w.id("c"))).all() == []


def test_unknown_or_other_tenant_referrer_is_ignored(db: Session) -> None:
    w = make_world(db)
    stranger = make_customer(db, merchant=make_merchant(db))
    with clock.frozen(T0):
        ownership.apply_touch(db, merchant_id=w.merchant.id, customer_id=w.id("c"), touch_id=None, channel="chat",
                              sharer_staff_id=None, sharer_customer_id=stranger.id, at=clock.now())
    assert ownership.referrer_of(db, merchant_id=w.merchant.id, customer_id=w.id("c")) is None


def test_disabled_guides_binding_does_not_protect(db: Session) -> None:
    # given: c is bound to g1 (15 days), then g1 is disabled
    w = make_world(db, guide_days=15)
    touch(db, w, 0, "g1")
    w.people["g1"].active = False
    db.flush()
    # when: g2 touches inside the period
    touch(db, w, 3, "g2")
    # then: rebound to g2
    assert ownership.guide_binding(db, merchant_id=w.merchant.id, customer_id=w.id("c")).guide_id == w.id("g2")


def test_disabled_sharer_binds_nothing(db: Session) -> None:
    w = make_world(db)
    w.people["g1"].active = False
    db.flush()
    touch(db, w, 0, "g1")
    assert ownership.guide_binding(db, merchant_id=w.merchant.id, customer_id=w.id("c")) is None
    assert db.scalars(select(CustomerBinding)).all() == []


def test_owner_set_elsewhere_is_adopted_and_protected(db: Session) -> None:
    # given: a customer already owned by g1 (set in the console, no binding yet)
    w = make_world(db, guide_days=15)
    owned = make_customer(db, merchant=w.merchant, owner=w.people["g1"])
    w.people["owned"] = owned
    # when: g2 shares to them
    touch(db, w, 0, "g2", customer="owned")
    # then: adopted as g1's from that touch, and protected against g2
    b = ownership.guide_binding(db, merchant_id=w.merchant.id, customer_id=owned.id)
    assert (b.guide_id, b.bound_at, b.protected_until) == (w.id("g1"), T0, T0 + dt.timedelta(days=15))
    assert [h.action for h in db.scalars(select(BindingHistory).where(BindingHistory.customer_id == owned.id))] == ["adopt"]
    db.refresh(owned)
    assert owned.owner_id == w.id("g1")


def test_settings_default_permanent_and_validation(db: Session) -> None:
    # given: a merchant with only the general protection_days
    merchant = make_merchant(db)
    admin = make_staff(db, merchant=merchant, role=Role.BRAND_ADMIN)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=make_store(db, merchant=merchant))
    merchants.update_merchant(db, actor=principal_of(db, admin), settings={"protection_days": 7})
    assert ownership.protection_settings(db, merchant_id=merchant.id) == {"guide_protection_days": 7,
                                                                          "referrer_protection_days": 7}
    # when: the referrer kind becomes permanent
    out = ownership.update_protection_settings(db, actor=principal_of(db, admin), referrer_protection_days=None)
    # then
    assert out == {"guide_protection_days": 7, "referrer_protection_days": None}
    for bad in (0, 3651, "30", True, 1.5):
        with pytest.raises(ValidationFailed):
            ownership.update_protection_settings(db, actor=principal_of(db, admin), guide_protection_days=bad)
    with pytest.raises(PermissionDenied):
        ownership.update_protection_settings(db, actor=principal_of(db, guide), guide_protection_days=3)
    assert ownership.protection_settings(db, merchant_id=merchant.id)["guide_protection_days"] == 7


def test_bound_customers_and_scoped_lists(db: Session) -> None:
    # given: c and r2 bound to g1; c and r2 brought by r1
    w = make_world(db)
    for who in ("c", "r2"):
        touch(db, w, 0, "g1", customer=who)
        touch(db, w, 0, "r1", customer=who)
    mid = w.merchant.id
    # then
    by_ref = ownership.bound_customers(db, merchant_id=mid, referrer_customer_id=w.id("r1"))
    assert sorted(b.customer_id for b in by_ref.items) == sorted([w.id("c"), w.id("r2")])
    assert by_ref.next_cursor is None
    page = ownership.bound_customers(db, merchant_id=mid, guide_id=w.id("g1"), limit=1)
    assert len(page.items) == 1 and page.next_cursor is not None
    rest = ownership.bound_customers(db, merchant_id=mid, guide_id=w.id("g1"), limit=1, cursor=page.next_cursor)
    assert {page.items[0].customer_id, rest.items[0].customer_id} == {w.id("c"), w.id("r2")}
    assert ownership.bound_customers(db, merchant_id=mid, guide_id=w.id("g2")).items == []
    with pytest.raises(ValueError):
        ownership.bound_customers(db, merchant_id=mid)
    # a guide sees only their own bindings; another guide sees none
    g1_view = ownership.list_bindings(db, actor=principal_of(db, w.people["g1"]))
    assert {b.customer_id for b in g1_view.items} == {w.id("c"), w.id("r2")}
    assert all(b.kind == "guide" for b in g1_view.items)
    assert ownership.list_bindings(db, actor=principal_of(db, w.people["g2"])).items == []


def test_owner_set_in_the_console_moves_the_binding(db: Session) -> None:
    # given: c bound to g1 by a touch
    w = make_world(db)
    touch(db, w, 0, "g1")
    admin = principal_of(db, w.people["admin"])
    # when: the console sets g2 as owner (customers emits customer.owner_changed; its handler calls sync_owner)
    from siyu.customers import service as customers

    customers.set_owner(db, customer_id=w.id("c"), owner_id=w.id("g2"), store_id=None, actor=admin, reason="手动")
    ownership.sync_owner(db, merchant_id=w.merchant.id, customer_id=w.id("c"), reason="手动")
    # then: the binding follows, logged; a replay of the event changes nothing more
    b = ownership.guide_binding(db, merchant_id=w.merchant.id, customer_id=w.id("c"))
    assert (b.guide_id, b.store_id) == (w.id("g2"), w.people["g2"].store_id)
    ownership.sync_owner(db, merchant_id=w.merchant.id, customer_id=w.id("c"), reason="手动")
    lines = db.scalars(select(BindingHistory).where(BindingHistory.action == "owner_sync")).all()
    assert [(h.from_guide_id, h.to_guide_id, h.reason) for h in lines] == [(w.id("g1"), w.id("g2"), "手动")]
    # an owner removed in the console unbinds
    customers.set_owner(db, customer_id=w.id("c"), owner_id=None, store_id=None, actor=admin)
    ownership.sync_owner(db, merchant_id=w.merchant.id, customer_id=w.id("c"), reason="")
    assert ownership.guide_binding(db, merchant_id=w.merchant.id, customer_id=w.id("c")) is None


def test_merged_customers_keep_one_binding_per_kind(db: Session) -> None:
    # given: c bound to g1 and brought by r1; r2 (the same person, seen twice) bound to g2 and brought by c
    w = make_world(db)
    touch(db, w, 0, "g1")
    touch(db, w, 0, "r1")
    touch(db, w, 0, "g2", customer="r2")
    touch(db, w, 0, "c", customer="r2")
    # when: r2 is merged into c
    ownership.move_merged(db, merchant_id=w.merchant.id, source_id=w.id("r2"), target_id=w.id("c"))
    # then: c keeps its own bindings; r2's guide binding is dropped; r2 referred by c would be a self-referral: dropped
    mid = w.merchant.id
    assert ownership.guide_binding(db, merchant_id=mid, customer_id=w.id("c")).guide_id == w.id("g1")
    assert ownership.referrer_of(db, merchant_id=mid, customer_id=w.id("c")) == w.id("r1")
    assert db.scalars(select(CustomerBinding).where(CustomerBinding.customer_id == w.id("r2"))).all() == []
    assert {h.customer_id for h in db.scalars(select(BindingHistory))} == {w.id("c")}


def test_merge_moves_referrals_to_the_survivor(db: Session) -> None:
    # given: r1 brought c; r1 is merged into r2
    w = make_world(db)
    touch(db, w, 0, "r1")
    ownership.move_merged(db, merchant_id=w.merchant.id, source_id=w.id("r1"), target_id=w.id("r2"))
    assert ownership.referrer_of(db, merchant_id=w.merchant.id, customer_id=w.id("c")) == w.id("r2")
