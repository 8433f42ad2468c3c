"""Pop-ups: audiences, pages, frequency caps per day and in total (frozen clock), dismissals, claims once,
conversions, a visitor's rows given to the customer at sign-in."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from siyu.core import clock
from siyu.core.errors import AppError
from siyu.promotions.models.coupons import Coupon
from siyu.promotions.models.popups import PopupEvent
from siyu.promotions.service import popups as service
from tests.factories.customers import make_customer, make_tag
from tests.factories.distribution import run_events
from tests.factories.membership import make_member, make_tier
from tests.factories.merchants import make_merchant
from tests.factories.orders import customer_principal, make_order
from tests.factories.promotions import make_popup_rule

VISITOR = "visitor-abcdefgh"


def _next(db, merchant, *, customer=None, visitor=None, page="home"):
    return service.next_popup(db, merchant_id=merchant.id, customer_id=customer.id if customer else None,
                              visitor_id=visitor, page=page)


def test_audiences(db) -> None:
    # given: one rule per audience, each its own priority
    merchant = make_merchant(db)
    tier = make_tier(db, merchant=merchant, name="银卡")
    tag = make_tag(db, merchant=merchant, name="宝妈")
    rules = {a: make_popup_rule(db, merchant=merchant, audience=a, name=a, priority=i, dormant_days=30,
                                tier_id=tier.id if a == "tier" else None, tag_id=tag.id if a == "tag" else None)
             for i, a in enumerate(("new_visitor", "tag", "tier", "dormant", "new_customer", "returning"))}
    fresh = make_customer(db, merchant=merchant)
    tagged = make_customer(db, merchant=merchant, tags=[tag])
    member = make_member(db, merchant=merchant)
    back = make_customer(db, merchant=merchant)
    make_order(db, merchant=merchant, customer=back, status="paid")
    sleepy = make_customer(db, merchant=merchant, paid_orders=3,
                           last_purchase_at=clock.now() - dt.timedelta(days=40))
    member_customer = db.get(type(fresh), member.customer_id)
    # when / then
    assert _next(db, merchant, visitor=VISITOR).id == rules["new_visitor"].id
    assert _next(db, merchant, customer=tagged).id == rules["tag"].id
    assert _next(db, merchant, customer=member_customer).id == rules["tier"].id
    assert _next(db, merchant, customer=sleepy).id == rules["dormant"].id
    assert _next(db, merchant, customer=fresh).id == rules["new_customer"].id
    assert _next(db, merchant, customer=back).id == rules["returning"].id


def test_pages_and_drafts(db) -> None:
    merchant = make_merchant(db)
    make_popup_rule(db, merchant=merchant, pages="product", name="product")
    make_popup_rule(db, merchant=merchant, pages="all", publish=False, name="draft")
    assert _next(db, merchant, visitor=VISITOR, page="home") is None
    assert _next(db, merchant, visitor=VISITOR, page="product").name == "product"


def test_caps_per_day_and_total_with_frozen_clock(db) -> None:
    # given: twice a day, three times in all
    merchant = make_merchant(db)
    day1 = clock.local_day_bounds(clock.today_local() + dt.timedelta(days=1))[0] + dt.timedelta(hours=2)
    with clock.frozen(day1):
        rule = make_popup_rule(db, merchant=merchant, cap_per_day=2, cap_total=3)
        assert _next(db, merchant, visitor=VISITOR).id == rule.id
        assert _next(db, merchant, visitor=VISITOR).id == rule.id
        assert _next(db, merchant, visitor=VISITOR) is None  # two today
        assert _next(db, merchant, visitor="another-visitor1").id == rule.id  # counted per person
    with clock.frozen(day1 + dt.timedelta(days=1)):
        assert _next(db, merchant, visitor=VISITOR).id == rule.id
        assert _next(db, merchant, visitor=VISITOR) is None  # three in all
    with clock.frozen(day1 + dt.timedelta(days=2)):
        assert _next(db, merchant, visitor=VISITOR) is None
    assert service.figures(db, merchant_id=merchant.id, rule_ids=[rule.id])[rule.id]["impression"] == 4
    assert service.figures(db, merchant_id=merchant.id, rule_ids=[rule.id])[rule.id]["reached"] == 2


def test_dismissed_today_is_not_shown_again_today(db) -> None:
    merchant = make_merchant(db)
    rule = make_popup_rule(db, merchant=merchant, cap_per_day=5, cap_total=10)
    fallback = make_popup_rule(db, merchant=merchant, priority=200, name="后备")
    assert _next(db, merchant, visitor=VISITOR).id == rule.id
    service.dismiss(db, merchant_id=merchant.id, rule_id=rule.id, customer_id=None, visitor_id=VISITOR)
    assert _next(db, merchant, visitor=VISITOR).id == fallback.id


def test_coupon_claimed_once(db) -> None:
    merchant = make_merchant(db)
    rule = make_popup_rule(db, merchant=merchant, audience="new_customer", content_kind="coupon")
    customer = make_customer(db, merchant=merchant)
    coupon_id = service.claim(db, actor=customer_principal(customer), rule_id=rule.id)
    coupon = db.get(Coupon, coupon_id)
    assert (coupon.customer_id, coupon.channel, coupon.source_ref) == (customer.id, "campaign", f"popup:{rule.id}")
    with pytest.raises(AppError) as exc:
        service.claim(db, actor=customer_principal(customer), rule_id=rule.id)
    assert exc.value.code == "offer_already_claimed"
    assert len(list(db.scalars(select(Coupon).where(Coupon.customer_id == customer.id)))) == 1


def test_link_click_and_conversion_within_window(db) -> None:
    start = clock.now().replace(microsecond=0)
    merchant = make_merchant(db)
    customer = make_customer(db, merchant=merchant)
    with clock.frozen(start):
        rule = make_popup_rule(db, merchant=merchant, link_url=f"/shop/{merchant.slug}/p/9", conversion_days=3)
        assert _next(db, merchant, customer=customer).id == rule.id
        assert service.click(db, merchant_id=merchant.id, rule_id=rule.id, customer_id=customer.id,
                             visitor_id=None) == f"/shop/{merchant.slug}/p/9"
    with clock.frozen(start + dt.timedelta(days=2)):
        order = make_order(db, merchant=merchant, customer=customer, status="paid")
        run_events(db)
        make_order(db, merchant=merchant, customer=customer, status="paid")
    with clock.frozen(start + dt.timedelta(days=5)):
        make_order(db, merchant=merchant, customer=customer, status="paid")
        run_events(db)
    conversions = list(db.scalars(select(PopupEvent.order_id).where(PopupEvent.kind == "conversion")))
    assert order.id in conversions and len(conversions) == 2  # the two orders of day 2, none on day 5
    figs = service.figures(db, merchant_id=merchant.id, rule_ids=[rule.id])[rule.id]
    assert (figs["impression"], figs["click"], figs["conversion"]) == (1, 1, 2)


def test_visitor_rows_become_the_customers_at_sign_in(db) -> None:
    merchant = make_merchant(db)
    rule = make_popup_rule(db, merchant=merchant, cap_total=1)
    assert _next(db, merchant, visitor=VISITOR).id == rule.id
    customer = make_customer(db, merchant=merchant)
    assert service.give_visitor_rows(db, merchant_id=merchant.id, visitor_id=VISITOR, customer_id=customer.id) == 1
    # the cap follows the person: already seen once in all
    assert _next(db, merchant, customer=customer) is None


def test_validation(db) -> None:
    merchant = make_merchant(db)
    with pytest.raises(AppError) as exc:
        make_popup_rule(db, merchant=merchant, audience="new_visitor", content_kind="coupon")
    assert exc.value.details["fields"].keys() == {"content_kind"}
    with pytest.raises(AppError) as exc:
        make_popup_rule(db, merchant=merchant, audience="tier", tier_id=None)
    assert exc.value.details["fields"].keys() == {"tier_id"}
    with pytest.raises(AppError) as exc:
        make_popup_rule(db, merchant=merchant, link_url="https://elsewhere.example/")
    assert exc.value.details["fields"].keys() == {"link_url"}


def test_merged_customer_keeps_pop_up_rows_and_offer_shows(db) -> None:
    # given: a customer who saw a pop-up and an offer, merged into another
    from siyu.core.auth import system_principal
    from siyu.customers import service as customers
    from siyu.promotions.models.payment_offers import PaymentOfferShow
    from siyu.promotions.service import payment_offers
    from tests.factories.promotions import make_offer_rule

    merchant = make_merchant(db)
    rule = make_popup_rule(db, merchant=merchant)
    make_offer_rule(db, merchant=merchant)
    source, target = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    assert _next(db, merchant, customer=source).id == rule.id
    show = payment_offers.show_for_order(db, order=make_order(db, merchant=merchant, customer=source,
                                                              status="paid")).show
    # when
    customers.merge_customers(db, source_id=source.id, target_id=target.id, actor=system_principal(merchant.id))
    run_events(db)
    # then
    assert sorted(db.scalars(select(PopupEvent.kind).where(PopupEvent.customer_id == target.id))) == \
        ["conversion", "impression"]
    assert db.scalar(select(PopupEvent.id).where(PopupEvent.customer_id == source.id)) is None
    assert db.get(PaymentOfferShow, show.id).customer_id == target.id


def test_ticks_end_campaigns_past_their_end(db) -> None:
    from siyu.core.jobs import registered

    merchant = make_merchant(db)
    rule = make_popup_rule(db, merchant=merchant)
    ticks = registered()
    assert {"promotions.split_pools_expire", "promotions.popups_end", "promotions.payment_offers_end",
            "promotions.split_campaigns_end"} <= set(ticks)
    assert ticks["promotions.popups_end"](db, rule.ends_at - dt.timedelta(seconds=1)) == 0
    assert ticks["promotions.popups_end"](db, rule.ends_at) == 1
    db.refresh(rule)
    assert rule.status == "ended"
