"""Bargains (砍价): converging cuts with exact amounts under a seeded RNG, one assist per friend,
never the starter, rate limits per visitor and device, expiry with a frozen clock, and buying at the
floor through checkout (ordered → bought, a cancelled order gives the bargain back)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import AppError, Conflict
from siyu.orders import service as orders
from siyu.promotions.models.bargains import Bargain, BargainAssist
from siyu.promotions.service import bargains
from tests.factories.customers import make_customer
from tests.factories.merchants import make_merchant
from tests.factories.orders import customer_principal, pay, place_order
from tests.factories.promotions import make_bargain_campaign

SEED = 7  # factors 6243, 9119, 10835 … for assists 1, 2, 3


def _given(db: Session, **kw):
    merchant = make_merchant(db)
    campaign = make_bargain_campaign(db, merchant=merchant, **kw)
    starter = make_customer(db, merchant=merchant, nickname="发起人")
    friends = [make_customer(db, merchant=merchant, nickname=f"好友{i}") for i in range(5)]
    return merchant, campaign, starter, friends


def _sum_cuts(db: Session, bargain_id: int) -> int:
    return int(db.scalar(select(func.coalesce(func.sum(BargainAssist.cut_cents), 0))
                         .where(BargainAssist.bargain_id == bargain_id)))


def test_compute_cut_converges_with_integer_cents() -> None:
    assert bargains.factor_for(SEED, 1) == 6243
    # remaining ÷ assists left × factor, floored
    assert bargains.compute_cut(remaining_cents=9000, assists_left=3, factor_bps=6243) == 1872
    # a new customer's weight (1.5×)
    assert bargains.compute_cut(remaining_cents=9000, assists_left=3, factor_bps=6243, weight_bps=15000) == 2809
    # the last expected assist takes the rest
    assert bargains.compute_cut(remaining_cents=3878, assists_left=1, factor_bps=5000) == 3878
    # at least 1 cent, and 1 cent left for each later assist
    assert bargains.compute_cut(remaining_cents=3, assists_left=3, factor_bps=5000) == 1
    assert bargains.compute_cut(remaining_cents=10, assists_left=2, factor_bps=15000, weight_bps=30000) == 9
    assert bargains.compute_cut(remaining_cents=0, assists_left=2, factor_bps=15000) == 0


def test_friends_cut_the_price_to_the_floor_in_the_expected_assists(db: Session) -> None:
    # given: 100.00 → 10.00 in 3 assists
    merchant, campaign, starter, friends = _given(db, start_price_cents=10000, floor_price_cents=1000,
                                                  expected_assists=3)
    bargain = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=SEED)
    assert (bargain.status, bargain.current_price_cents) == ("open", 10000)
    # when
    cuts = [bargains.assist(db, actor=customer_principal(f), bargain_id=bargain.id).cut_cents for f in friends[:3]]
    # then: exact cuts, the floor exactly, the cuts sum to start − current
    db.refresh(bargain)
    assert cuts == [1872, 3250, 3878]
    assert (bargain.current_price_cents, bargain.assists_count) == (1000, 3)
    assert _sum_cuts(db, bargain.id) == 10000 - 1000
    assert [a.price_after_cents for a in bargains.assists_of(db, [bargain.id])[bargain.id]] == [8128, 4878, 1000]
    # a fourth friend has nothing left to cut
    with pytest.raises(Conflict) as err:
        bargains.assist(db, actor=customer_principal(friends[3]), bargain_id=bargain.id)
    assert err.value.code == "bargain_at_floor"
    assert _sum_cuts(db, bargain.id) == 9000


def test_new_customers_cut_more_when_the_campaign_weights_them(db: Session) -> None:
    merchant, campaign, starter, friends = _given(db, new_customer_weight_bps=15000)
    old_friend = friends[0]
    old_friend.paid_orders = 4
    one = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=SEED)
    other_starter = make_customer(db, merchant=merchant)
    two = bargains.start_bargain(db, actor=customer_principal(other_starter), campaign_id=campaign.id, seed=SEED)
    # when: the same first factor, an old customer on one, a new one on the other
    old = bargains.assist(db, actor=customer_principal(old_friend), bargain_id=one.id)
    new = bargains.assist(db, actor=customer_principal(friends[1]), bargain_id=two.id)
    # then
    assert (old.cut_cents, old.new_customer) == (1872, False)
    assert (new.cut_cents, new.new_customer) == (2809, True)


def test_one_assist_per_friend_and_never_the_starter(db: Session) -> None:
    merchant, campaign, starter, friends = _given(db)
    bargain = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=SEED)
    with pytest.raises(Conflict) as err:
        bargains.assist(db, actor=customer_principal(starter), bargain_id=bargain.id)
    assert err.value.code == "own_bargain"
    bargains.assist(db, actor=customer_principal(friends[0]), bargain_id=bargain.id)
    with pytest.raises(Conflict) as err:
        bargains.assist(db, actor=customer_principal(friends[0]), bargain_id=bargain.id)
    assert err.value.code == "already_assisted"
    db.refresh(bargain)
    assert (bargain.assists_count, bargain.current_price_cents) == (1, 8128)
    # a staff or anonymous actor cannot assist
    with pytest.raises(AppError) as err:
        bargains.assist(db, actor=system_principal(merchant.id), bargain_id=bargain.id)
    assert err.value.status_code == 401


def test_rate_limits_per_visitor_and_per_device(db: Session) -> None:
    merchant, campaign, starter, friends = _given(db, expected_assists=10, time_limit_minutes=600)
    start = dt.datetime(2026, 5, 1, 2, 10, tzinfo=dt.UTC)
    with clock.frozen(start):
        campaign.starts_at = start - dt.timedelta(hours=1)
        bargain = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=SEED)
        # two friends on one phone (same device id, different visitor cookies): the device limit is 2
        for friend, visitor in ((friends[0], "visitor-aaaa1"), (friends[1], "visitor-bbbb2")):
            bargains.assist(db, actor=customer_principal(friend), bargain_id=bargain.id, visitor_id=visitor,
                            device_id="dev-1", device_limit=2, visitor_limit=2)
        with pytest.raises(AppError) as err:
            bargains.assist(db, actor=customer_principal(friends[2]), bargain_id=bargain.id, visitor_id="visitor-cccc3",
                            device_id="dev-1", device_limit=2, visitor_limit=2)
        assert (err.value.status_code, err.value.code) == (429, "assist_rate_limited")
        # the same visitor id on another device is limited too (visitor-aaaa1 has 1 of 1 left … then none)
        bargains.assist(db, actor=customer_principal(friends[2]), bargain_id=bargain.id, visitor_id="visitor-aaaa1",
                        device_id="dev-2", device_limit=2, visitor_limit=2)
        with pytest.raises(AppError) as err:
            bargains.assist(db, actor=customer_principal(friends[3]), bargain_id=bargain.id,
                            visitor_id="visitor-aaaa1", device_id="dev-3", device_limit=2, visitor_limit=2)
        assert err.value.code == "assist_rate_limited"
        db.refresh(bargain)
        assert bargain.assists_count == 3
    # the next hour the device may help again
    with clock.frozen(start + dt.timedelta(hours=1)):
        bargains.assist(db, actor=customer_principal(friends[3]), bargain_id=bargain.id, visitor_id="visitor-dddd4",
                        device_id="dev-1", device_limit=2, visitor_limit=2)
        db.refresh(bargain)
        assert bargain.assists_count == 4
        assert _sum_cuts(db, bargain.id) == bargain.start_price_cents - bargain.current_price_cents


def test_starting_again_returns_the_open_bargain_and_the_limit_holds(db: Session) -> None:
    merchant, campaign, starter, _friends = _given(db, time_limit_minutes=30, max_bargains_per_customer=1)
    t0 = clock.now()
    first = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id)
    assert bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id).id == first.id
    with clock.frozen(t0 + dt.timedelta(minutes=31)):
        assert bargains.expire_due(db, clock.now()) == 1
        with pytest.raises(Conflict) as err:
            bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id)
        assert err.value.code == "bargain_limit_reached"
    assert db.scalar(select(func.count()).select_from(Bargain).where(Bargain.customer_id == starter.id)) == 1


def test_bargains_expire_with_a_frozen_clock(db: Session) -> None:
    t0 = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC)
    with clock.frozen(t0):
        merchant, campaign, starter, friends = _given(db, time_limit_minutes=60)
        bargain = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=SEED)
        assert bargain.expires_at == t0 + dt.timedelta(minutes=60)
        bargains.assist(db, actor=customer_principal(friends[0]), bargain_id=bargain.id)
    with clock.frozen(t0 + dt.timedelta(minutes=59, seconds=59)):
        assert bargains.expire_due(db, clock.now()) == 0
    with clock.frozen(t0 + dt.timedelta(minutes=60)):
        # then: it ends; twice is harmless; nobody can help or buy any more
        assert bargains.expire_due(db, clock.now()) == 1
        assert bargains.expire_due(db, clock.now()) == 0
        db.refresh(bargain)
        assert (bargain.status, bargain.current_price_cents) == ("expired", 8128)
        with pytest.raises(Conflict) as err:
            bargains.assist(db, actor=customer_principal(friends[1]), bargain_id=bargain.id)
        assert err.value.code == "bargain_closed"
        with pytest.raises(Conflict) as err:
            place_order(db, customer=starter, items=[(campaign.sku_id, 1)],
                        promotion={"kind": "bargain", "bargain_id": bargain.id})
        assert err.value.code == "bargain_closed"


def test_a_bargain_never_outlives_its_campaign(db: Session) -> None:
    now = clock.now()
    merchant, campaign, starter, _ = _given(db, time_limit_minutes=600, ends_at=now + dt.timedelta(minutes=90))
    bargain = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id)
    assert bargain.expires_at == campaign.ends_at
    # ending the campaign expires its open bargains
    bargains.change_campaign_status(db, campaign.id, actor=system_principal(merchant.id), action="end")
    db.refresh(bargain)
    assert bargain.status == "expired"


def test_the_starter_buys_at_the_floor_then_pays(db: Session) -> None:
    # given: a bargain at its floor
    merchant, campaign, starter, friends = _given(db, start_price_cents=10000, floor_price_cents=1000,
                                                  expected_assists=2, allow_buy_at_current=False)
    bargain = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=SEED)
    promo = {"kind": "bargain", "bargain_id": bargain.id}
    bargains.assist(db, actor=customer_principal(friends[0]), bargain_id=bargain.id)
    # not at the floor yet, and the campaign does not sell above it
    with pytest.raises(Conflict) as err:
        place_order(db, customer=starter, items=[(campaign.sku_id, 1)], promotion=promo)
    assert err.value.code == "bargain_not_at_floor"
    bargains.assist(db, actor=customer_principal(friends[1]), bargain_id=bargain.id)
    # only the starter, only one unit
    with pytest.raises(AppError) as err:
        place_order(db, customer=friends[0], items=[(campaign.sku_id, 1)], promotion=promo)
    assert err.value.code == "bargain_not_found"
    with pytest.raises(Conflict) as err:
        place_order(db, customer=starter, items=[(campaign.sku_id, 2)], promotion=promo)
    assert err.value.code == "bargain_line_mismatch"
    # when
    order = place_order(db, customer=starter, items=[(campaign.sku_id, 1)], promotion=promo)
    # then: priced at the floor, the bargain is ordered
    assert (order.total_cents, order.payable_cents) == (1000, 1000)
    db.refresh(bargain)
    assert (bargain.status, bargain.order_id) == ("ordered", order.id)
    with pytest.raises(AppError):
        place_order(db, customer=starter, items=[(campaign.sku_id, 1)], promotion=promo)
    # when: paid (order.paid handled after the commit)
    pay(db, order)
    db.commit()
    db.refresh(bargain)
    assert (bargain.status, bargain.paid_cents) == ("bought", 1000)
    figures = bargains.campaign_figures(db, merchant_id=merchant.id, campaign_ids=[campaign.id])[campaign.id]
    assert figures == {"bargains": 1, "assists": 2, "at_floor": 1, "orders": 1, "bought": 1, "gmv_cents": 1000}


def test_buying_at_the_current_price_and_a_cancelled_order_gives_it_back(db: Session) -> None:
    merchant, campaign, starter, friends = _given(db, start_price_cents=10000, floor_price_cents=1000,
                                                  expected_assists=3, allow_buy_at_current=True)
    bargain = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=SEED)
    bargains.assist(db, actor=customer_principal(friends[0]), bargain_id=bargain.id)
    # preview writes nothing
    from siyu.orders.schemas import CheckoutRequest
    from tests.factories.orders import checkout_body

    body = checkout_body([(campaign.sku_id, 1)], promotion={"kind": "bargain", "bargain_id": bargain.id})
    ctx = orders.preview(db, actor=customer_principal(starter), request=CheckoutRequest.model_validate(body))
    assert ctx["total_cents"] == 8128
    db.refresh(bargain)
    assert bargain.status == "open"
    order = place_order(db, customer=starter, items=[(campaign.sku_id, 1)],
                        promotion={"kind": "bargain", "bargain_id": bargain.id})
    assert order.total_cents == 8128
    # friends cannot cut an ordered bargain
    with pytest.raises(Conflict) as err:
        bargains.assist(db, actor=customer_principal(friends[1]), bargain_id=bargain.id)
    assert err.value.code == "bargain_closed"
    # when: the order is cancelled
    orders.cancel_order(db, order.id, actor=system_principal(merchant.id))
    db.commit()
    # then: open again, friends can go on
    db.refresh(bargain)
    assert (bargain.status, bargain.order_id) == ("open", None)
    bargains.assist(db, actor=customer_principal(friends[1]), bargain_id=bargain.id)
    db.refresh(bargain)
    assert bargain.current_price_cents == 4878


def test_a_paused_campaign_takes_no_assists_until_resumed(db: Session) -> None:
    merchant, campaign, starter, friends = _given(db)
    bargain = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=SEED)
    system = system_principal(merchant.id)
    bargains.change_campaign_status(db, campaign.id, actor=system, action="pause")
    with pytest.raises(Conflict) as err:
        bargains.assist(db, actor=customer_principal(friends[0]), bargain_id=bargain.id)
    assert err.value.code == "campaign_paused"
    bargains.change_campaign_status(db, campaign.id, actor=system, action="resume")
    assert bargains.assist(db, actor=customer_principal(friends[0]), bargain_id=bargain.id).cut_cents == 1872


def test_a_customer_merge_moves_bargains_and_assists(db: Session) -> None:
    merchant, campaign, starter, friends = _given(db, expected_assists=5)
    bargain = bargains.start_bargain(db, actor=customer_principal(starter), campaign_id=campaign.id, seed=SEED)
    source, target = friends[0], friends[1]
    bargains.assist(db, actor=customer_principal(source), bargain_id=bargain.id)
    bargains.assist(db, actor=customer_principal(target), bargain_id=bargain.id)
    other = bargains.start_bargain(db, actor=customer_principal(friends[2]), campaign_id=campaign.id, seed=SEED)
    bargains.assist(db, actor=customer_principal(source), bargain_id=other.id)
    own = bargains.start_bargain(db, actor=customer_principal(source), campaign_id=campaign.id, seed=SEED)
    # when
    bargains.merge_customers(db, merchant_id=merchant.id, source_id=source.id, target_id=target.id)
    db.expire_all()
    # then: the source's bargain and its assist elsewhere are the target's; on the bargain both
    # helped, the source's assist stays its own (one assist per friend per bargain)
    assert db.get(Bargain, own.id).customer_id == target.id
    helpers = dict(db.execute(select(BargainAssist.bargain_id, BargainAssist.helper_customer_id)
                              .where(BargainAssist.bargain_id == other.id)).all())
    assert helpers == {other.id: target.id}
    on_first = sorted(db.scalars(select(BargainAssist.helper_customer_id).where(BargainAssist.bargain_id == bargain.id)))
    assert on_first == sorted([source.id, target.id])
