"""Split coupons: opening, joining, the split (equal by largest remainder, random with a floor from the stored
seed), limits, expiry with a frozen clock, merges."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import AppError
from siyu.promotions.jobs import split_coupons as split_jobs
from siyu.promotions.models.coupons import Coupon
from siyu.promotions.models.split_coupons import SplitMember, SplitPool
from siyu.promotions.service import split_coupons as service
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import customer_principal
from tests.factories.promotions import make_coupon_template, make_split_campaign


def _coupons(db, pool_id: int) -> list[Coupon]:
    return list(db.scalars(select(Coupon).where(Coupon.source_ref.like(f"split_pool:{pool_id}:%"))
                           .order_by(Coupon.source_ref)))


def test_split_parts_equal_sum_exactly_by_largest_remainder() -> None:
    # given / when
    parts = service.split_parts(amount_cents=1000, team_size=3, mode="equal")
    # then
    assert parts == [334, 333, 333]
    assert sum(parts) == 1000


def test_split_parts_random_is_deterministic_by_seed_and_respects_floor() -> None:
    for seed in range(200):
        parts = service.split_parts(amount_cents=1000, team_size=4, mode="random", floor_cents=150, seed=seed)
        assert sum(parts) == 1000
        assert min(parts) >= 150
        assert parts == service.split_parts(amount_cents=1000, team_size=4, mode="random", floor_cents=150, seed=seed)
    assert service.split_parts(amount_cents=1000, team_size=4, mode="random", floor_cents=150, seed=1) != \
        service.split_parts(amount_cents=1000, team_size=4, mode="random", floor_cents=150, seed=2)


def test_pool_fills_on_last_seat_and_everyone_gets_their_part(db) -> None:
    # given: a live campaign of ¥10.00 for 3 people
    merchant = make_merchant(db)
    campaign = make_split_campaign(db, merchant=merchant, pool_amount_cents=1000, team_size=3)
    a, b, c = (make_customer(db, merchant=merchant, nickname=n) for n in ("甲", "乙", "丙"))
    # when: a opens, b and c join
    pool = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    service.join_pool(db, actor=customer_principal(b), pool_id=pool.id)
    assert _coupons(db, pool.id) == []
    last = service.join_pool(db, actor=customer_principal(c), pool_id=pool.id)
    # then
    db.refresh(pool)
    assert (pool.status, pool.members_count, last.seat) == ("filled", 3, 3)
    members = service.members_of(db, pool)
    assert [(m.customer_id, m.part_cents) for m in members] == [(a.id, 334), (b.id, 333), (c.id, 333)]
    coupons = _coupons(db, pool.id)
    assert [(x.customer_id, x.amount_cents, x.channel) for x in coupons] == \
        [(a.id, 334, "split"), (b.id, 333, "split"), (c.id, 333, "split")]
    assert [m.coupon_id for m in members] == [x.id for x in coupons]


def test_random_split_uses_the_pools_seed(db) -> None:
    # given
    merchant = make_merchant(db)
    campaign = make_split_campaign(db, merchant=merchant, pool_amount_cents=2000, team_size=2, split_mode="random",
                                   floor_cents=500)
    a, b = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    pool = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    # when
    service.join_pool(db, actor=customer_principal(b), pool_id=pool.id)
    # then
    expected = service.split_parts(amount_cents=2000, team_size=2, mode="random", floor_cents=500, seed=pool.seed)
    assert [m.part_cents for m in service.members_of(db, pool)] == expected
    assert sum(expected) == 2000 and min(expected) >= 500


def test_no_seat_after_full_and_no_double_join(db) -> None:
    # given: a full pool of 2
    merchant = make_merchant(db)
    campaign = make_split_campaign(db, merchant=merchant, team_size=2)
    a, b, c = (make_customer(db, merchant=merchant) for _ in range(3))
    pool = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    # when / then: the opener cannot join their own pool
    with pytest.raises(AppError) as exc:
        service.join_pool(db, actor=customer_principal(a), pool_id=pool.id)
    assert exc.value.code == "split_already_joined"
    service.join_pool(db, actor=customer_principal(b), pool_id=pool.id)
    with pytest.raises(AppError) as exc:
        service.join_pool(db, actor=customer_principal(c), pool_id=pool.id)
    assert exc.value.code == "split_pool_full"
    # then: nothing for c
    assert db.scalar(select(func.count()).select_from(SplitMember).where(SplitMember.customer_id == c.id)) == 0
    assert db.scalar(select(func.count()).select_from(Coupon).where(Coupon.customer_id == c.id)) == 0


def test_open_returns_the_open_pool_and_respects_the_open_limit(db) -> None:
    merchant = make_merchant(db)
    campaign = make_split_campaign(db, merchant=merchant, team_size=2, max_opens_per_customer=1)
    a, b = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    first = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    assert service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id).id == first.id
    service.join_pool(db, actor=customer_principal(b), pool_id=first.id)
    with pytest.raises(AppError) as exc:
        service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    assert exc.value.code == "split_open_limit"


def test_join_limit_per_customer(db) -> None:
    merchant = make_merchant(db)
    campaign = make_split_campaign(db, merchant=merchant, team_size=3, max_joins_per_customer=1)
    a, b, joiner = (make_customer(db, merchant=merchant) for _ in range(3))
    p1 = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    p2 = service.open_pool(db, actor=customer_principal(b), campaign_id=campaign.id)
    service.join_pool(db, actor=customer_principal(joiner), pool_id=p1.id)
    with pytest.raises(AppError) as exc:
        service.join_pool(db, actor=customer_principal(joiner), pool_id=p2.id)
    assert exc.value.code == "split_join_limit"
    db.refresh(p2)
    assert p2.members_count == 1


def test_unfilled_pool_expires_with_a_frozen_clock(db) -> None:
    # given: a pool of 3 with 2 members and 30 minutes to fill
    start = clock.now().replace(microsecond=0)
    merchant = make_merchant(db)
    with clock.frozen(start):
        campaign = make_split_campaign(db, merchant=merchant, team_size=3, fill_minutes=30)
        a, b, c = (make_customer(db, merchant=merchant) for _ in range(3))
        pool = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
        service.join_pool(db, actor=customer_principal(b), pool_id=pool.id)
    # when: the tick runs one minute before and at the deadline
    assert split_jobs.expire_pools(db, start + dt.timedelta(minutes=29)) == 0
    db.refresh(pool)
    assert pool.status == "open"
    assert split_jobs.expire_pools(db, start + dt.timedelta(minutes=30)) == 1
    assert split_jobs.expire_pools(db, start + dt.timedelta(minutes=31)) == 0  # idempotent
    # then: expired, no coupon, and nobody can join any more
    db.refresh(pool)
    assert (pool.status, pool.members_count) == ("expired", 2)
    assert _coupons(db, pool.id) == []
    with clock.frozen(start + dt.timedelta(minutes=31)), pytest.raises(AppError) as exc:
        service.join_pool(db, actor=customer_principal(c), pool_id=pool.id)
    assert exc.value.code == "split_pool_expired"


def test_join_after_deadline_before_tick_is_refused(db) -> None:
    start = clock.now().replace(microsecond=0)
    merchant = make_merchant(db)
    with clock.frozen(start):
        campaign = make_split_campaign(db, merchant=merchant, team_size=2, fill_minutes=10)
        a, b = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
        pool = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    with clock.frozen(start + dt.timedelta(minutes=10)):
        assert service.pool_status(pool) == "expired"
        with pytest.raises(AppError) as exc:
            service.join_pool(db, actor=customer_principal(b), pool_id=pool.id)
    assert exc.value.code == "split_pool_expired"
    db.refresh(pool)
    assert (pool.status, pool.members_count) == ("open", 1)


def test_campaign_validation_and_status_machine(db) -> None:
    merchant = make_merchant(db)
    template = make_coupon_template(db, merchant=merchant, channels=["split"], per_customer_limit=10)
    actor = system_principal(merchant.id)
    now = clock.now()
    bad = service.SplitCampaignIn(name="x", template_id=template.id, pool_amount_cents=1000, team_size=4,
                                  split_mode="random", floor_cents=300, starts_at=now, ends_at=now + dt.timedelta(days=1))
    with pytest.raises(AppError) as exc:
        service.create_campaign(db, actor=actor, data=bad)
    assert exc.value.details["fields"].keys() == {"floor_cents"}
    campaign = make_split_campaign(db, merchant=merchant, template=template, publish=False)
    assert campaign.status == "draft"
    with pytest.raises(AppError) as exc:
        service.open_pool(db, actor=customer_principal(make_customer(db, merchant=merchant)), campaign_id=campaign.id)
    assert exc.value.status_code == 404
    assert service.change_status(db, campaign.id, actor=actor, action="publish").status == "live"
    assert service.change_status(db, campaign.id, actor=actor, action="pause").status == "paused"
    with pytest.raises(AppError) as exc:
        service.open_pool(db, actor=customer_principal(make_customer(db, merchant=merchant)), campaign_id=campaign.id)
    assert exc.value.code == "campaign_not_running"
    assert service.change_status(db, campaign.id, actor=actor, action="end").status == "ended"
    with pytest.raises(AppError) as exc:
        service.change_status(db, campaign.id, actor=actor, action="resume")
    assert exc.value.code == "invalid_transition"


def test_other_merchants_pool_is_not_found(db) -> None:
    merchant, other = make_merchant(db), make_merchant(db)
    campaign = make_split_campaign(db, merchant=merchant)
    pool = service.open_pool(db, actor=customer_principal(make_customer(db, merchant=merchant)),
                             campaign_id=campaign.id)
    with pytest.raises(AppError) as exc:
        service.join_pool(db, actor=customer_principal(make_customer(db, merchant=other)), pool_id=pool.id)
    assert exc.value.status_code == 404


def test_figures_count_pools_by_status(db) -> None:
    merchant = make_merchant(db)
    campaign = make_split_campaign(db, merchant=merchant, team_size=2, pool_amount_cents=500)
    a, b, c = (make_customer(db, merchant=merchant) for _ in range(3))
    p1 = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    service.join_pool(db, actor=customer_principal(b), pool_id=p1.id)
    service.open_pool(db, actor=customer_principal(c), campaign_id=campaign.id)
    figs = service.figures(db, merchant_id=merchant.id, campaign_ids=[campaign.id])[campaign.id]
    assert figs == {"pools": 2, "open": 1, "filled": 1, "expired": 0, "members": 3, "issued_cents": 500}


def test_merge_moves_seats_without_double_counting(db) -> None:
    merchant = make_merchant(db)
    campaign = make_split_campaign(db, merchant=merchant, team_size=3)
    a, b, c = (make_customer(db, merchant=merchant) for _ in range(3))
    pool = service.open_pool(db, actor=customer_principal(a), campaign_id=campaign.id)
    service.join_pool(db, actor=customer_principal(b), pool_id=pool.id)
    # when: b merges into a (already in the pool), c's pool is moved wholesale
    service.move_customer(db, merchant_id=merchant.id, source_id=b.id, target_id=a.id)
    rows = db.execute(select(SplitMember.seat, SplitMember.customer_id).where(SplitMember.pool_id == pool.id)
                      .order_by(SplitMember.seat)).all()
    assert rows == [(1, a.id), (2, b.id)]
    service.move_customer(db, merchant_id=merchant.id, source_id=a.id, target_id=c.id)
    db.refresh(pool)
    assert db.get(SplitPool, pool.id).opener_id == c.id
