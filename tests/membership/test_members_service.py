"""Member cards: activation, card numbers, counter lookup in scope, check-in streaks, profile
completion, birthday gifts, the customer profile, and the shop API of the member centre."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Role
from siyu.core.errors import AppError, NotFound
from siyu.customers.models import Customer
from siyu.membership.models.members import Member
from siyu.membership.service import members, points, tiers
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer
from tests.factories.membership import customer_actor, make_member, make_tier, set_rules
from tests.factories.merchants import make_merchant, make_staff, make_store, principal_of
from tests.factories.orders import customer_headers, make_order


def test_activation_fills_the_profile_and_is_idempotent(db: Session, merchant: Merchant) -> None:
    # given: an entry tier and a customer
    entry = make_tier(db, merchant=merchant, name="普通", growth_threshold=0)
    customer = make_customer(db, merchant=merchant)
    # when: the card is activated with a phone, twice
    first = members.activate(db, actor=customer_actor(customer), phone="138 0000 2222", birthday="1992-02-03")
    again = members.activate(db, actor=customer_actor(customer), phone="13900000000")
    # then: one card with a valid number, the entry tier, and the phone on the customer
    assert first.id == again.id
    assert members.valid_card_number(first.card_no) and first.card_no.startswith("8")
    assert (first.tier_id, first.phone, first.birthday) == (entry.id, "13800002222", dt.date(1992, 2, 3))
    db.refresh(customer)
    assert customer.phone == "13800002222"
    assert db.scalar(select(func.count()).select_from(Member)) == 1


def test_activation_refuses_a_bad_phone_or_one_taken(db: Session, merchant: Merchant) -> None:
    customer = make_customer(db, merchant=merchant)
    with pytest.raises(AppError) as exc:
        members.activate(db, actor=customer_actor(customer), phone="abc")
    assert exc.value.status_code == 422
    make_customer(db, merchant=merchant, phone="13811112222")
    with pytest.raises(AppError) as exc:
        members.activate(db, actor=customer_actor(customer), phone="13811112222")
    assert exc.value.code == "phone_taken"
    assert db.scalar(select(func.count()).select_from(Member)) == 0


def test_card_number_check_digit_catches_a_typo() -> None:
    number = members.card_number(1, 42)
    assert members.valid_card_number(number)
    wrong = number[:-2] + str((int(number[-2]) + 1) % 10) + number[-1]
    assert not members.valid_card_number(wrong)
    assert members.card_number(1, 42) == number  # stable


def test_counter_lookup_respects_the_staff_scope(db: Session, merchant: Merchant) -> None:
    # given: two stores, a member owned by a guide of store A
    store_a, store_b = make_store(db, merchant=merchant), make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store_a)
    manager_b = make_staff(db, merchant=merchant, role=Role.STORE_MANAGER, store=store_b)
    member = make_member(db, merchant=merchant, customer=make_customer(db, merchant=merchant, owner=guide))
    # then: the guide finds it by card or phone; a manager of another store does not; nor another merchant
    assert members.lookup(db, actor=principal_of(db, guide), code=f" {member.card_no} ").id == member.id
    assert members.lookup(db, actor=principal_of(db, guide), code=f"+86{member.phone}").id == member.id
    with pytest.raises(NotFound):
        members.lookup(db, actor=principal_of(db, manager_b), code=member.card_no)
    other = make_staff(db, merchant=make_merchant(db))
    with pytest.raises(NotFound):
        members.lookup(db, actor=principal_of(db, other), code=member.card_no)


def test_check_in_streak_and_once_a_day(db: Session, merchant: Merchant) -> None:
    set_rules(db, merchant=merchant, checkin_points=3, checkin_growth=2)
    member = make_member(db, merchant=merchant)
    actor = customer_actor(db.get(Customer, member.customer_id))
    day = dt.datetime(2026, 5, 1, 1, 0, tzinfo=dt.UTC)
    with clock.frozen(day):
        assert members.check_in(db, actor=actor)["streak"] == 1
        with pytest.raises(AppError) as exc:
            members.check_in(db, actor=actor)
        assert exc.value.code == "already_checked_in"
    with clock.frozen(day + dt.timedelta(days=1)):
        assert members.check_in(db, actor=actor)["streak"] == 2
    with clock.frozen(day + dt.timedelta(days=3)):
        assert members.check_in(db, actor=actor)["streak"] == 1
    assert points.balance(db, merchant_id=merchant.id, customer_id=member.customer_id) == 9
    assert member.growth == 6


def test_profile_completion_is_rewarded_once(db: Session, merchant: Merchant) -> None:
    member = make_member(db, merchant=merchant)
    actor = customer_actor(db.get(Customer, member.customer_id))
    members.update_member_profile(db, actor=actor, name="李雷")
    assert points.balance(db, merchant_id=merchant.id, customer_id=member.customer_id) == 0
    members.update_member_profile(db, actor=actor, birthday="1990-01-02")
    members.update_member_profile(db, actor=actor, name="李雷雷")
    assert points.balance(db, merchant_id=merchant.id, customer_id=member.customer_id) == 50
    assert member.growth == 10


def test_birthday_gift_once_a_year_by_tier(db: Session, merchant: Merchant) -> None:
    make_tier(db, merchant=merchant, name="普通", growth_threshold=0, birthday_points=88)
    member = make_member(db, merchant=merchant, birthday="1990-06-15")
    other = make_member(db, merchant=merchant, birthday="1990-06-16")
    # 2026-06-15 08:00 Shanghai
    at = dt.datetime(2026, 6, 15, 0, 0, tzinfo=dt.UTC)
    assert tiers.birthday_tick(db, at) == 1
    assert tiers.birthday_tick(db, at + dt.timedelta(hours=3)) == 0
    assert points.balance(db, merchant_id=merchant.id, customer_id=member.customer_id) == 88
    assert points.balance(db, merchant_id=merchant.id, customer_id=other.customer_id) == 0
    # a 29 February birthday is celebrated on 28 February in a common year
    leap = make_member(db, merchant=merchant, birthday="1992-02-29")
    assert tiers.birthday_tick(db, dt.datetime(2027, 2, 28, 1, 0, tzinfo=dt.UTC)) == 1
    assert points.balance(db, merchant_id=merchant.id, customer_id=leap.customer_id) == 88


def test_customer_profile_new_or_returning_from_orders(db: Session, merchant: Merchant) -> None:
    customer = make_customer(db, merchant=merchant)
    assert members.customer_profile(db, merchant_id=merchant.id, customer_id=customer.id)["returning"] is False
    # two orders on two days (each writes its funnel "order" row: a visit a day)
    with clock.frozen(dt.datetime(2026, 3, 1, 4, tzinfo=dt.UTC)):
        make_order(db, merchant=merchant, customer=customer, status="paid")
    with clock.frozen(dt.datetime(2026, 3, 2, 4, tzinfo=dt.UTC)):
        make_order(db, merchant=merchant, customer=customer, status="paid")
    profile = members.customer_profile(db, merchant_id=merchant.id, customer_id=customer.id)
    assert (profile["returning"], profile["visits"]) == (True, 2)
    assert profile["last_visit_at"] is not None


def test_customer_profile_visits_come_from_attribution_events(db: Session, merchant: Merchant) -> None:
    from tests.factories.attribution import make_funnel_event

    customer = make_customer(db, merchant=merchant)
    # 2026-03-01 23:30 and 2026-03-02 00:10 Shanghai are two days; two views on the second are one visit
    first = dt.datetime(2026, 3, 1, 15, 30, tzinfo=dt.UTC)
    for at in (first, first + dt.timedelta(minutes=40), first + dt.timedelta(hours=3)):
        make_funnel_event(db, merchant=merchant, kind="view", customer=customer, at=at)
    profile = members.customer_profile(db, merchant_id=merchant.id, customer_id=customer.id)
    assert (profile["visits"], profile["visits_source"]) == (2, "attribution")
    assert profile["last_visit_at"] == first + dt.timedelta(hours=3)


def test_shop_api_member_centre(client, db: Session, merchant: Merchant) -> None:
    make_tier(db, merchant=merchant, name="普通", growth_threshold=0)
    make_tier(db, merchant=merchant, name="金卡", growth_threshold=100, free_shipping=True)
    customer = make_customer(db, merchant=merchant)
    headers = customer_headers(db, customer)
    base = f"/api/v1/shop/{merchant.slug}/membership"
    assert client.get(f"{base}/me", headers=headers).json()["member"] is None
    r = client.post(f"{base}/check-in", headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_a_member"
    r = client.post(f"{base}/activate", json={"phone": "13612345678", "birthday": "1995-07-08", "name": "韩梅梅"},
                    headers=headers)
    assert r.status_code == 201, r.text
    card = r.json()
    # activation with a full profile earns the profile reward
    assert card["points"]["balance"] == 50 and card["growth"] == 10
    assert card["next_tier"]["name"] == "金卡" and card["growth_needed"] == 90
    assert client.post(f"{base}/check-in", headers=headers).json()["points"] == 5
    history = client.get(f"{base}/points", headers=headers).json()["items"]
    assert [e["delta"] for e in history] == [5, 50]
    assert client.get(f"{base}/card.png", headers=headers).headers["content-type"] == "image/png"
    assert client.get(f"{base}/me").status_code == 401


def test_a_merged_customer_brings_card_and_points_with_their_expiry(db: Session, merchant: Merchant) -> None:
    from siyu.customers import service as customers
    from siyu.ledger import service as ledger
    from siyu.membership.models.points import PointsLot
    from tests.factories.merchants import make_staff, principal_of

    # given: a member with 300 points and a customer without a card
    source = make_member(db, merchant=merchant, points=300)
    source_customer_id = source.customer_id
    target = make_customer(db, merchant=merchant)
    expires = db.scalars(select(PointsLot.expires_at).where(PointsLot.customer_id == source.customer_id)).one()
    admin = principal_of(db, make_staff(db, merchant=merchant))
    # when: the source is merged into the target (the handlers run after the commit)
    customers.merge_customers(db, source_id=source.customer_id, target_id=target.id, actor=admin)
    db.commit()
    # then: the card and the points belong to the target, with the same expiry
    db.refresh(source)
    assert source.customer_id == target.id
    assert points.balance(db, merchant_id=merchant.id, customer_id=target.id) == 300
    assert points.balance(db, merchant_id=merchant.id, customer_id=source_customer_id) == 0
    moved = db.scalars(select(PointsLot).where(PointsLot.customer_id == target.id)).one()
    assert moved.expires_at == expires
    assert ledger.verify(db, merchant.id) == []


def test_member_list_follows_the_customer_scope(db: Session, merchant: Merchant) -> None:
    store = make_store(db, merchant=merchant)
    guide = make_staff(db, merchant=merchant, role=Role.GUIDE, store=store)
    mine = make_member(db, merchant=merchant, customer=make_customer(db, merchant=merchant, owner=guide))
    other = make_member(db, merchant=merchant)
    admin = make_staff(db, merchant=merchant)
    assert {m.id for m in members.list_members(db, actor=principal_of(db, admin)).items} == {mine.id, other.id}
    assert [m.id for m in members.list_members(db, actor=principal_of(db, guide)).items] == [mine.id]
    assert [m.id for m in members.list_members(db, actor=principal_of(db, admin), q=other.card_no).items] == [other.id]
