"""Shares service: codes and reuse, the target registry, touches (share context, fission edge, the binding
hand-off), stitching a visitor's anonymous touches at sign-in, funnel rows with their touch context."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.attribution.models.shares import FissionEdge, FunnelEvent, Share, Touch
from siyu.attribution.service import funnel, ownership, shares
from siyu.core import clock
from siyu.core.auth import Principal, Role
from siyu.core.errors import AppError, NotFound, ValidationFailed
from siyu.merchants.models import Merchant
from tests.factories.attribution import make_share, make_touch
from tests.factories.catalog import make_product
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant, make_staff, make_store, principal_of

T0 = dt.datetime(2026, 5, 1, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def merchant(db: Session) -> Merchant:
    return make_merchant(db)


def count(db: Session, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def customer_actor(customer) -> Principal:
    return Principal(merchant_id=customer.merchant_id, kind="customer", subject_id=customer.id, name=customer.nickname)


# ---------------------------------------------------------------- shares


def test_a_sharer_sharing_the_same_target_twice_keeps_one_code(db: Session, merchant: Merchant) -> None:
    # given
    product = make_product(db, merchant=merchant)
    customer = make_customer(db, merchant=merchant)
    # when
    first = shares.create_share(db, actor=customer_actor(customer), target_type="product", target_id=product.id)
    again = shares.create_share(db, actor=customer_actor(customer), target_type="product", target_id=product.id)
    moments = shares.create_share(db, actor=customer_actor(customer), target_type="product", target_id=product.id,
                                  channel="moments")
    # then
    assert again.id == first.id
    assert moments.id != first.id
    assert (first.channel, moments.channel) == ("chat", "moments")
    assert first.sharer_customer_id == customer.id and first.sharer_staff_id is None
    assert len(first.code) == shares.CODE_LENGTH and set(first.code) <= set(shares.CODE_ALPHABET)
    assert count(db, Share, Share.merchant_id == merchant.id) == 2


def test_staff_and_customers_get_different_shares_of_one_target(db: Session, merchant: Merchant) -> None:
    product = make_product(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=make_store(db, merchant=merchant))
    customer = make_customer(db, merchant=merchant)
    by_guide = shares.create_share(db, actor=principal_of(db, guide), target_type="product", target_id=product.id)
    by_customer = shares.create_share(db, actor=customer_actor(customer), target_type="product", target_id=product.id)
    assert by_guide.id != by_customer.id
    assert by_guide.sharer_staff_id == guide.id and by_guide.sharer_customer_id is None


@pytest.mark.parametrize(("target_type", "error", "code"), [
    ("nonsense", ValidationFailed, "validation_error"),
    ("wave", AppError, "target_not_shareable"),
])
def test_unknown_and_unregistered_targets_are_refused(db: Session, merchant: Merchant, target_type, error,
                                                      code, monkeypatch) -> None:
    # given: no domain has registered waves (group buying may have, in this process)
    monkeypatch.setattr(shares, "_targets", {k: v for k, v in shares._targets.items() if k != "wave"})
    customer = make_customer(db, merchant=merchant)
    with pytest.raises(error) as raised:
        shares.create_share(db, actor=customer_actor(customer), target_type=target_type, target_id=1)
    assert raised.value.code == code and 400 <= raised.value.status_code < 500
    assert count(db, Share, Share.merchant_id == merchant.id) == 0


def test_missing_draft_and_foreign_products_cannot_be_shared(db: Session, merchant: Merchant) -> None:
    customer = make_customer(db, merchant=merchant)
    draft = make_product(db, merchant=merchant, status="draft")
    foreign = make_product(db, merchant=make_merchant(db))
    for target_id in (draft.id, foreign.id, 2**40):
        with pytest.raises(NotFound):
            shares.create_share(db, actor=customer_actor(customer), target_type="product", target_id=target_id)
    assert count(db, Share, Share.merchant_id == merchant.id) == 0


def test_a_registered_target_becomes_shareable(db: Session, merchant: Merchant, monkeypatch) -> None:
    # given: a higher domain registers its waves
    monkeypatch.setattr(shares, "_targets", dict(shares._targets))
    shares.register_target("wave", lambda slug, i: f"/shop/{slug}/wave/{i}",
                           describe=lambda s, m, i: shares.TargetInfo(title=f"波次{i}"))
    customer = make_customer(db, merchant=merchant)
    # when
    share = shares.create_share(db, actor=customer_actor(customer), target_type="wave", target_id=7)
    # then
    assert shares.target_url("wave", 7, slug=merchant.slug) == f"/shop/{merchant.slug}/wave/7"
    assert share.target_type == "wave" and share.target_id == 7
    with pytest.raises(ValueError):
        shares.register_target("nonsense", lambda slug, i: "/")


def test_store_and_guide_qr_codes(db: Session, merchant: Merchant) -> None:
    store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    store_share = shares.store_qr_share(db, merchant_id=merchant.id, store_id=store.id)
    guide_share = shares.guide_qr_share(db, merchant_id=merchant.id, staff_id=guide.id)
    assert (store_share.channel, store_share.target_type, store_share.target_id) == ("store_qr", "store", store.id)
    assert store_share.sharer_staff_id is None and store_share.sharer_customer_id is None
    assert (guide_share.channel, guide_share.target_type, guide_share.target_id) == ("guide_qr", "store", store.id)
    assert guide_share.sharer_staff_id == guide.id
    assert shares.store_qr_share(db, merchant_id=merchant.id, store_id=store.id).id == store_share.id


# ---------------------------------------------------------------- touches


def test_a_touch_of_a_share_carries_its_sharer_target_and_campaign(db: Session, merchant: Merchant) -> None:
    product = make_product(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE)
    share = make_share(db, merchant=merchant, target_type="product", target_id=product.id, staff=guide)
    with clock.frozen(T0):
        touch = make_touch(db, merchant=merchant, share=share, visitor_id="visitor-0001")
    assert (touch.channel, touch.share_id, touch.share_code) == ("chat", share.id, share.code)
    assert (touch.sharer_staff_id, touch.sharer_customer_id) == (guide.id, None)
    assert (touch.target_type, touch.target_id, touch.campaign) == ("product", product.id, f"product:{product.id}")
    assert (touch.visitor_id, touch.customer_id, touch.at) == ("visitor-0001", None, T0)
    assert count(db, FissionEdge, FissionEdge.merchant_id == merchant.id) == 0


def test_an_unknown_channel_is_refused_and_writes_nothing(db: Session, merchant: Merchant) -> None:
    with pytest.raises(ValidationFailed):
        shares.record_touch(db, merchant_id=merchant.id, channel="telepathy", visitor_id="visitor-0001")
    assert count(db, Touch, Touch.merchant_id == merchant.id) == 0


def test_a_known_customers_touch_goes_to_the_binding_rules(db: Session, merchant: Merchant, monkeypatch) -> None:
    calls = []
    real = ownership.apply_touch

    def spy(session, **kwargs):
        calls.append(kwargs)
        return real(session, **kwargs)

    monkeypatch.setattr(ownership, "apply_touch", spy)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE)
    customer = make_customer(db, merchant=merchant)
    share = make_share(db, merchant=merchant, staff=guide, channel="guide_qr")
    with clock.frozen(T0):
        touch = make_touch(db, merchant=merchant, share=share, customer=customer)
        make_touch(db, merchant=merchant, visitor_id="anonymous-1")  # not known: no binding run
    assert calls == [{"merchant_id": merchant.id, "customer_id": customer.id, "touch_id": touch.id,
                      "channel": "guide_qr", "sharer_staff_id": guide.id, "sharer_customer_id": None, "at": T0}]


def test_the_first_shared_touch_brings_the_customer_and_self_shares_do_not(db: Session, merchant: Merchant) -> None:
    alice, bob, carol = (make_customer(db, merchant=merchant, nickname=n) for n in ("alice", "bob", "carol"))
    by_alice = make_share(db, merchant=merchant, customer=alice)
    by_bob = make_share(db, merchant=merchant, customer=bob)
    by_carol = make_share(db, merchant=merchant, customer=carol)
    make_touch(db, merchant=merchant, customer=carol, at=T0)  # a direct touch has no sharer
    make_touch(db, merchant=merchant, share=by_carol, customer=carol, at=T0 + dt.timedelta(hours=1))  # her own
    make_touch(db, merchant=merchant, share=by_alice, customer=carol, at=T0 + dt.timedelta(hours=2))
    make_touch(db, merchant=merchant, share=by_bob, customer=carol, at=T0 + dt.timedelta(hours=3))
    edge = db.scalars(select(FissionEdge).where(FissionEdge.customer_id == carol.id)).one()
    assert (edge.by_customer_id, edge.by_staff_id, edge.share_id) == (alice.id, None, by_alice.id)
    assert edge.at == T0 + dt.timedelta(hours=2)


def test_signing_in_stitches_the_visitors_touches_in_time_order(db: Session, merchant: Merchant, monkeypatch) -> None:
    # given: an anonymous visitor opened a customer's share, then a guide's
    calls = []
    monkeypatch.setattr(ownership, "apply_touch", lambda session, **kw: calls.append(kw))
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE)
    alice = make_customer(db, merchant=merchant, nickname="alice")
    newcomer = make_customer(db, merchant=merchant, nickname="newcomer")
    first = make_touch(db, merchant=merchant, share=make_share(db, merchant=merchant, customer=alice),
                       visitor_id="visitor-abcdef", at=T0)
    second = make_touch(db, merchant=merchant, share=make_share(db, merchant=merchant, staff=guide),
                        visitor_id="visitor-abcdef", at=T0 + dt.timedelta(days=1))
    other = make_touch(db, merchant=merchant, visitor_id="visitor-zzzzzz", at=T0)
    with clock.frozen(T0 + dt.timedelta(days=1, hours=1)):
        funnel.record_event(db, merchant_id=merchant.id, kind="view", visitor_id="visitor-abcdef", product_id=5)
    # when
    stitched = shares.stitch_visitor(db, merchant_id=merchant.id, customer_id=newcomer.id, visitor_id="visitor-abcdef")
    # then
    assert stitched == 2
    db.refresh(first), db.refresh(second), db.refresh(other)
    assert (first.customer_id, second.customer_id, other.customer_id) == (newcomer.id, newcomer.id, None)
    assert [c["touch_id"] for c in calls] == [first.id, second.id]
    edge = db.scalars(select(FissionEdge).where(FissionEdge.customer_id == newcomer.id)).one()
    assert edge.by_customer_id == alice.id
    row = db.scalars(select(FunnelEvent).where(FunnelEvent.merchant_id == merchant.id)).one()
    assert row.customer_id == newcomer.id and row.touch_id == second.id
    # and a second sign-in finds nothing more to stitch
    assert shares.stitch_visitor(db, merchant_id=merchant.id, customer_id=newcomer.id, visitor_id="visitor-abcdef") == 0
    assert shares.stitch_visitor(db, merchant_id=merchant.id, customer_id=newcomer.id, visitor_id="bad id!") == 0


def test_an_earlier_touch_found_at_sign_in_moves_the_fission_edge(db: Session, merchant: Merchant) -> None:
    alice, bob, carol = (make_customer(db, merchant=merchant, nickname=n) for n in ("alice", "bob", "carol"))
    make_touch(db, merchant=merchant, share=make_share(db, merchant=merchant, customer=bob), customer=carol,
               at=T0 + dt.timedelta(days=2))
    make_touch(db, merchant=merchant, share=make_share(db, merchant=merchant, customer=alice), visitor_id="visitor-carol",
               at=T0)
    shares.stitch_visitor(db, merchant_id=merchant.id, customer_id=carol.id, visitor_id="visitor-carol")
    edge = db.scalars(select(FissionEdge).where(FissionEdge.customer_id == carol.id)).one()
    assert (edge.by_customer_id, edge.at) == (alice.id, T0)


def test_last_touch_of_a_customer_and_of_a_visitor(db: Session, merchant: Merchant) -> None:
    customer = make_customer(db, merchant=merchant)
    early = make_touch(db, merchant=merchant, customer=customer, at=T0)
    late = make_touch(db, merchant=merchant, customer=customer, channel="moments", at=T0 + dt.timedelta(hours=5))
    anon = make_touch(db, merchant=merchant, visitor_id="visitor-0002", at=T0)
    assert shares.last_touch(db, merchant_id=merchant.id, customer_id=customer.id).id == late.id
    assert shares.last_touch(db, merchant_id=merchant.id, customer_id=customer.id,
                             before=T0 + dt.timedelta(hours=1)).id == early.id
    assert shares.last_touch(db, merchant_id=merchant.id, visitor_id="visitor-0002").id == anon.id
    assert shares.last_touch(db, merchant_id=merchant.id) is None


def test_merging_customers_moves_touches_and_keeps_the_earlier_edge(db: Session, merchant: Merchant) -> None:
    alice, bob = make_customer(db, merchant=merchant, nickname="alice"), make_customer(db, merchant=merchant)
    source, target = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    make_touch(db, merchant=merchant, share=make_share(db, merchant=merchant, customer=alice), customer=source, at=T0)
    make_touch(db, merchant=merchant, share=make_share(db, merchant=merchant, customer=bob), customer=target,
               at=T0 + dt.timedelta(days=1))
    shares.move_customer(db, merchant_id=merchant.id, source_id=source.id, target_id=target.id)
    assert count(db, Touch, Touch.customer_id == source.id) == 0
    assert count(db, Touch, Touch.customer_id == target.id) == 2
    edges = list(db.scalars(select(FissionEdge).where(FissionEdge.merchant_id == merchant.id)))
    assert [(e.customer_id, e.by_customer_id) for e in edges] == [(target.id, alice.id)]


# ---------------------------------------------------------------- funnel


def test_funnel_rows_carry_the_last_touch_and_the_shanghai_day(db: Session, merchant: Merchant) -> None:
    customer = make_customer(db, merchant=merchant)
    share = make_share(db, merchant=merchant, customer=make_customer(db, merchant=merchant), channel="moments")
    touch = make_touch(db, merchant=merchant, share=share, customer=customer, at=T0)
    late_evening_utc = dt.datetime(2026, 5, 1, 17, 30, tzinfo=dt.UTC)  # 01:30 on 2 May in Shanghai
    n = funnel.record_events(db, merchant_id=merchant.id, kind="exposure", customer_id=customer.id,
                             product_ids=[3, 4, 3], at=late_evening_utc)
    assert n == 2
    rows = list(db.scalars(select(FunnelEvent).where(FunnelEvent.merchant_id == merchant.id).order_by(FunnelEvent.id)))
    assert [(r.kind, r.product_id, r.day, r.touch_id, r.channel, r.share_id) for r in rows] == [
        (1, 3, dt.date(2026, 5, 2), touch.id, "moments", share.id),
        (1, 4, dt.date(2026, 5, 2), touch.id, "moments", share.id)]
    assert funnel.counts_by_kind(db, merchant_id=merchant.id, start=dt.date(2026, 5, 2), end=dt.date(2026, 5, 2)) == {
        "exposure": 2, "view": 0, "add_to_cart": 0, "order": 0, "pay": 0}


def test_a_client_may_report_only_exposure_and_view(db: Session, merchant: Merchant) -> None:
    with pytest.raises(ValidationFailed):
        funnel.record_beacon(db, merchant_id=merchant.id, kind="pay", product_ids=[1], customer_id=None,
                             visitor_id="visitor-0003")
    assert funnel.record_beacon(db, merchant_id=merchant.id, kind="view", product_ids=[1], customer_id=None,
                                visitor_id=None) == 0
    assert count(db, FunnelEvent, FunnelEvent.merchant_id == merchant.id) == 0
