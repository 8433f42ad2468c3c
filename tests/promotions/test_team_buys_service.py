"""Team purchase: the checkout contributor, seats taken on payment, completion, the last-seat loser,
expiry with a frozen clock (automatic refunds through the sandbox provider), limits and merges."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.catalog.models import Sku
from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import AppError
from siyu.core.models import OutboxEvent
from siyu.customers import service as customers
from siyu.merchants.models import Merchant
from siyu.orders import service as orders
from siyu.orders.models import Order, RefundRequest
from siyu.orders.schemas import CheckoutRequest
from siyu.payments.models import PaymentRefund
from siyu.promotions.jobs import team_buys as jobs
from siyu.promotions.models.team_buys import Team, TeamMember
from siyu.promotions.service import team_buys as service
from tests.factories.customers import make_customer
from tests.factories.orders import checkout_body, customer_principal, make_sku, pay, place_order
from tests.factories.promotions import make_team_buy, team_buy_order


def count(db: Session, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def paid(db: Session, order: Order) -> Order:
    """Pay as the sandbox notification would, then commit so order.paid's handlers run."""
    pay(db, order)
    db.commit()
    db.refresh(order)
    return order


def team_of(db: Session, order: Order) -> Team:
    member = db.scalars(select(TeamMember).where(TeamMember.order_id == order.id)).one()
    db.refresh(member)
    team = db.get(Team, member.team_id)
    db.refresh(team)
    return team


def stock(db: Session, sku_id: int) -> int:
    return catalog.stock_of(db, merchant_id=db.get(Sku, sku_id).merchant_id, sku_ids=[sku_id])[sku_id]


def test_first_paid_order_opens_the_team_and_starts_its_clock(db: Session, merchant: Merchant) -> None:
    # given a running campaign: team of 3 at ¥8.00 instead of ¥10.00, 24 h to fill
    campaign = make_team_buy(db, merchant=merchant, team_price_cents=800, team_size=3, time_limit_minutes=24 * 60)
    leader = make_customer(db, merchant=merchant, nickname="阿花")
    # when the leader places an order for a new team
    order = team_buy_order(db, customer=leader, campaign=campaign)
    # then it is priced at the team price and a pending place waits for the payment (no team yet)
    assert (order.subtotal_cents, order.adjustments_cents, order.total_cents) == (1000, -200, 800)
    assert order.adjustments[0]["kind"] == "team_buy"
    member = db.scalars(select(TeamMember).where(TeamMember.order_id == order.id)).one()
    assert (member.status, member.team_id, member.amount_cents) == ("pending", None, 800)
    assert count(db, Team, Team.campaign_id == campaign.id) == 0
    # when it is paid
    at = clock.now().replace(microsecond=0)
    with clock.frozen(at):
        paid(db, order)
    # then the team exists with its first seat taken and its clock running from the payment
    team = team_of(db, order)
    assert (team.status, team.size, team.paid_count, team.leader_customer_id) == ("forming", 3, 1, leader.id)
    assert team.expires_at == at + dt.timedelta(hours=24)
    db.refresh(member)
    assert (member.status, member.is_leader, member.team_id) == ("paid", True, team.id)


def test_third_paid_member_completes_the_team(db: Session, merchant: Merchant) -> None:
    # given a team of 3 opened by a paid leader
    campaign = make_team_buy(db, merchant=merchant, team_size=3)
    first = paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign))
    team = team_of(db, first)
    # when two friends join and pay
    for _ in range(2):
        paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign, team=team))
    # then the team is complete, once, with its event
    db.refresh(team)
    assert (team.status, team.paid_count) == ("complete", 3)
    assert team.completed_at is not None
    events = list(db.scalars(select(OutboxEvent).where(OutboxEvent.name == service.TEAM_COMPLETED)))
    assert len(events) == 1
    assert events[0].payload["team_id"] == team.id
    assert len(events[0].payload["order_ids"]) == 3
    assert service.figures(db, merchant_id=merchant.id, campaign_ids=[campaign.id])[campaign.id] == {
        "participants": 3, "orders": 3, "gmv_cents": 2400, "refunded_orders": 0, "forming": 0, "complete": 1,
        "failed": 0}


def test_lucky_draw_keeps_the_winners_and_refunds_the_others(db: Session, merchant: Merchant) -> None:
    # given a lucky-draw campaign: teams of 3, one winner each
    campaign = make_team_buy(db, merchant=merchant, team_size=3, lucky_winners=1, stock=10)
    sku_id = service.campaign_skus(db, campaign.id)[0].sku_id
    first = paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign))
    team = team_of(db, first)
    # when the team fills
    others = [paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign,
                                      team=team)) for _ in range(2)]
    # then it is complete, one member won and keeps the goods, two were refunded through the sandbox
    db.refresh(team)
    assert (team.status, team.paid_count) == ("complete", 3)
    members = list(db.scalars(select(TeamMember).where(TeamMember.team_id == team.id)))
    for m in members:
        db.refresh(m)
    assert sorted((m.won, m.status, m.refund_reason) for m in members) == [
        (False, "refunded", "lucky_draw"), (False, "refunded", "lucky_draw"), (True, "paid", "")]
    statuses = []
    for order in [first, *others]:
        db.refresh(order)
        statuses.append(order.status)
    assert sorted(statuses) == ["paid", "refunded", "refunded"]
    assert count(db, PaymentRefund, PaymentRefund.status == "succeeded") == 2
    assert stock(db, sku_id) == 9
    event = db.scalars(select(OutboxEvent).where(OutboxEvent.name == service.TEAM_COMPLETED)).one()
    assert event.payload["winner_order_ids"] == [m.order_id for m in members if m.won]


def test_nobody_joins_the_same_team_twice(db: Session, merchant: Merchant) -> None:
    # given a forming team and a friend with a pending order for it
    campaign = make_team_buy(db, merchant=merchant, team_size=3)
    leader = make_customer(db, merchant=merchant)
    team = team_of(db, paid(db, team_buy_order(db, customer=leader, campaign=campaign)))
    friend = make_customer(db, merchant=merchant)
    team_buy_order(db, customer=friend, campaign=campaign, team=team)
    orders_before = count(db, Order)
    # when the friend (or the leader) tries to join again
    for who in (friend, leader):
        with pytest.raises(AppError) as exc:
            team_buy_order(db, customer=who, campaign=campaign, team=team)
        # then they are refused and no order or place is written
        assert exc.value.code == "team_already_joined"
    assert count(db, Order) == orders_before
    assert count(db, TeamMember, TeamMember.team_id == team.id) == 2


def test_a_cancelled_order_gives_the_place_up(db: Session, merchant: Merchant) -> None:
    campaign = make_team_buy(db, merchant=merchant, team_size=3)
    team = team_of(db, paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign)))
    friend = make_customer(db, merchant=merchant)
    order = team_buy_order(db, customer=friend, campaign=campaign, team=team)
    # when the friend cancels the unpaid order
    orders.cancel_order(db, order.id, actor=customer_principal(friend))
    db.commit()
    # then the place is cancelled and the friend may join again
    assert db.scalars(select(TeamMember.status).where(TeamMember.order_id == order.id)).one() == "cancelled"
    again = team_buy_order(db, customer=friend, campaign=campaign, team=team)
    assert again.total_cents == 800


def test_join_refusals_have_stable_codes(db: Session, merchant: Merchant) -> None:
    campaign = make_team_buy(db, merchant=merchant, team_size=2, per_customer_limit=1, time_limit_minutes=60)
    full = team_of(db, paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign)))
    paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign, team=full))
    forming = team_of(db, paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant),
                                                  campaign=campaign)))
    someone = make_customer(db, merchant=merchant)

    def code(**promotion) -> str:
        request = CheckoutRequest.model_validate(checkout_body(
            [(promotion.pop("sku_id", None) or service.campaign_skus(db, campaign.id)[0].sku_id, 1)],
            promotion={"kind": "team_buy", **promotion}))
        with pytest.raises(AppError) as exc:
            orders.preview(db, actor=customer_principal(someone), request=request)
        return exc.value.code

    assert code(team_id=full.id) == "team_full"
    assert code(team_id=2**40) == "team_not_found"
    assert code(campaign_id=2**40) == "team_buy_not_found"
    other = make_sku(db, merchant=merchant)
    assert code(campaign_id=campaign.id, sku_id=other.id) == "team_buy_item"
    with clock.frozen(clock.now() + dt.timedelta(minutes=61)):
        assert code(team_id=forming.id) == "team_expired"
    # the limit: one live place per customer in this campaign
    team_buy_order(db, customer=someone, campaign=campaign, team=forming)
    assert code(campaign_id=campaign.id) == "team_limit_reached"
    service.change_status(db, campaign.id, actor=system_principal(merchant.id), action="pause")
    assert code(campaign_id=campaign.id) == "team_buy_not_running"


def test_loser_of_the_last_seat_is_refunded_through_the_provider(db: Session, merchant: Merchant) -> None:
    # given a team of 2 with one seat left and two friends with pending orders for it
    campaign = make_team_buy(db, merchant=merchant, team_size=2, on_full="refund", stock=10)
    team = team_of(db, paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign)))
    sku_id = service.campaign_skus(db, campaign.id)[0].sku_id
    a = team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign, team=team)
    b = team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign, team=team)
    assert stock(db, sku_id) == 7
    # when both pay, a first
    paid(db, a)
    paid(db, b)
    # then a completes the team; b's money goes back through the sandbox and its unit back into stock
    db.refresh(team)
    assert (team.status, team.paid_count) == ("complete", 2)
    assert db.scalars(select(TeamMember.status).where(TeamMember.order_id == a.id)).one() == "paid"
    loser = db.scalars(select(TeamMember).where(TeamMember.order_id == b.id)).one()
    assert (loser.status, loser.refund_reason) == ("refunded", "team_full")
    db.refresh(b)
    assert (b.status, b.refunded_cents) == ("refunded", 800)
    refund = db.scalars(select(RefundRequest).where(RefundRequest.order_id == b.id)).one()
    assert (refund.status, refund.source, refund.money_cents, refund.restock) == ("refunded", "promotion", 800, True)
    provider = db.scalars(select(PaymentRefund).where(PaymentRefund.payment_id == b.payment_id)).one()
    assert (provider.status, provider.amount_cents) == ("succeeded", 800)
    assert stock(db, sku_id) == 8
    # and a replay of the payment changes nothing
    assert service.record_paid(db, merchant_id=merchant.id, order_id=b.id) == "already"


def test_loser_opens_a_new_team_when_configured(db: Session, merchant: Merchant) -> None:
    campaign = make_team_buy(db, merchant=merchant, team_size=2, on_full="new_team")
    team = team_of(db, paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign)))
    a = team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign, team=team)
    late = make_customer(db, merchant=merchant)
    b = team_buy_order(db, customer=late, campaign=campaign, team=team)
    paid(db, a)
    paid(db, b)
    # then b keeps its money and leads a new team of its own
    moved = db.scalars(select(TeamMember).where(TeamMember.order_id == b.id)).one()
    db.refresh(moved)
    assert (moved.status, moved.is_leader, moved.asked_team_id) == ("paid", True, team.id)
    new_team = db.get(Team, moved.team_id)
    assert (new_team.status, new_team.paid_count, new_team.leader_customer_id) == ("forming", 1, late.id)
    db.refresh(b)
    assert (b.status, b.refunded_cents) == ("paid", 0)


def test_expired_teams_fail_and_refund_every_paid_member(db: Session, merchant: Merchant) -> None:
    # given a team of 3 (2 hours to fill) with two paid members and one pending
    campaign = make_team_buy(db, merchant=merchant, team_size=3, time_limit_minutes=120, stock=10)
    sku_id = service.campaign_skus(db, campaign.id)[0].sku_id
    opened = clock.now().replace(microsecond=0)
    with clock.frozen(opened):
        first = paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign))
        team = team_of(db, first)
        second = paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign,
                                          team=team))
        pending = team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign, team=team)
    assert stock(db, sku_id) == 7
    # when the tick runs just before the end: nothing happens
    assert jobs.teams_expire(db, opened + dt.timedelta(minutes=119)) == 0
    # when the clock passes the limit and the tick runs (twice)
    later = opened + dt.timedelta(minutes=121)
    with clock.frozen(later):
        assert jobs.teams_expire(db, later) == 1
        assert jobs.teams_expire(db, later) == 0
        db.commit()
    # then the team failed and both paid members got their money back through the sandbox provider
    db.refresh(team)
    assert (team.status, team.failed_at) == ("failed", later)
    for order in (first, second):
        db.refresh(order)
        assert (order.status, order.refunded_cents) == ("refunded", 800)
        provider = db.scalars(select(PaymentRefund).where(PaymentRefund.payment_id == order.payment_id)).one()
        assert (provider.status, provider.amount_cents) == ("succeeded", 800)
        member = db.scalars(select(TeamMember).where(TeamMember.order_id == order.id)).one()
        assert (member.status, member.refund_reason) == ("refunded", "team_failed")
    assert stock(db, sku_id) == 9
    # the pending member's order is left to expire as usual
    db.refresh(pending)
    assert pending.status == "pending_payment"
    assert service.figures(db, merchant_id=merchant.id, campaign_ids=[campaign.id])[campaign.id]["failed"] == 1
    # and when it is paid after all, it is refunded at once
    with clock.frozen(later):
        paid(db, pending)
    db.refresh(pending)
    assert pending.status == "refunded"


def test_after_sales_refund_gives_the_seat_back(db: Session, merchant: Merchant) -> None:
    campaign = make_team_buy(db, merchant=merchant, team_size=3)
    team = team_of(db, paid(db, team_buy_order(db, customer=make_customer(db, merchant=merchant), campaign=campaign)))
    friend = make_customer(db, merchant=merchant)
    order = paid(db, team_buy_order(db, customer=friend, campaign=campaign, team=team))
    db.refresh(team)
    assert team.paid_count == 2
    # when the friend's order is refunded through after-sales
    system = system_principal(merchant.id)
    refund = orders.request_refund(db, order.id, actor=customer_principal(friend), reason="不想要了")
    orders.approve_refund(db, refund.id, actor=system)
    db.commit()
    # then the seat is free again
    db.refresh(team)
    assert team.paid_count == 1
    assert db.scalars(select(TeamMember.refund_reason).where(TeamMember.order_id == order.id)).one() == "after_sales"


def test_no_query_without_a_team_buy_and_preview_writes_nothing(db: Session, merchant: Merchant) -> None:
    campaign = make_team_buy(db, merchant=merchant)
    customer = make_customer(db, merchant=merchant)
    sku = make_sku(db, merchant=merchant)
    ctx = service.pricing.PricingContext(merchant_id=merchant.id, customer_id=customer.id, lines=[
        service.pricing.PricingLine(sku_id=sku.id, product_id=sku.product_id, category_id=None, title="x", spec={},
                                    unit_price_cents=1000, quantity=1)],
        fulfilment=service.pricing.Fulfilment(type="delivery"), promotion={"kind": "flash_sale", "campaign_id": 1})
    statements: list[str] = []

    def seen(*args) -> None:
        statements.append(args[2])

    engine = db.get_bind().engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        service.TeamBuyContributor().contribute(db, ctx)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statements == []
    assert ctx.adjustments == []
    # a preview of a team buy prices it and writes no place
    request = CheckoutRequest.model_validate(checkout_body(
        [(service.campaign_skus(db, campaign.id)[0].sku_id, 2)], promotion={"kind": "team_buy",
                                                                             "campaign_id": campaign.id}))
    preview = orders.preview(db, actor=customer_principal(customer), request=request)
    assert (preview["subtotal_cents"], preview["total_cents"]) == (2000, 1600)
    assert count(db, TeamMember) == 0


def test_campaign_clock_and_actions(db: Session, merchant: Merchant) -> None:
    now = clock.now()
    campaign = make_team_buy(db, merchant=merchant, status="draft", starts_at=now + dt.timedelta(hours=1),
                             ends_at=now + dt.timedelta(hours=5))
    system = system_principal(merchant.id)
    assert service.change_status(db, campaign.id, actor=system, action="schedule").status == "scheduled"
    assert service.status_of(campaign, now) == "scheduled"
    assert service.change_status(db, campaign.id, actor=system, action="unschedule").status == "draft"
    service.change_status(db, campaign.id, actor=system, action="schedule")
    assert jobs.team_buys_clock(db, now) == 0
    # once its window has begun it cannot go back to draft, even before the tick ran
    with clock.frozen(now + dt.timedelta(hours=2)), pytest.raises(AppError) as started:
        service.change_status(db, campaign.id, actor=system, action="unschedule")
    assert started.value.code == "team_buy_started"
    assert jobs.team_buys_clock(db, now + dt.timedelta(hours=2)) == 1
    assert campaign.status == "active"
    assert service.change_status(db, campaign.id, actor=system, action="pause").status == "paused"
    with pytest.raises(AppError) as exc:
        service.change_status(db, campaign.id, actor=system, action="pause")
    assert exc.value.code == "invalid_transition"
    assert service.change_status(db, campaign.id, actor=system, action="resume").status == "scheduled"
    assert jobs.team_buys_clock(db, now + dt.timedelta(hours=6)) == 1
    assert campaign.status == "ended"


def test_customer_merge_moves_places(db: Session, merchant: Merchant) -> None:
    campaign = make_team_buy(db, merchant=merchant)
    source = make_customer(db, merchant=merchant)
    target = make_customer(db, merchant=merchant)
    order = paid(db, team_buy_order(db, customer=source, campaign=campaign))
    team = team_of(db, order)
    customers.merge_customers(db, source_id=source.id, target_id=target.id, actor=system_principal(merchant.id))
    db.commit()
    db.refresh(team)
    assert team.leader_customer_id == target.id
    assert db.scalars(select(TeamMember.customer_id).where(TeamMember.order_id == order.id)).one() == target.id


def test_plain_orders_are_not_team_orders(db: Session, merchant: Merchant) -> None:
    customer = make_customer(db, merchant=merchant)
    order = place_order(db, customer=customer, items=[(make_sku(db, merchant=merchant), 1)])
    paid(db, order)
    assert count(db, TeamMember) == 0
    assert service.record_paid(db, merchant_id=merchant.id, order_id=order.id) == "none"


def test_goods_of_a_forming_team_are_held_until_the_team_is_complete(db: Session, merchant: Merchant) -> None:
    from tests.factories.merchants import make_staff, principal_of

    # given a team of 2 whose leader has paid
    campaign = make_team_buy(db, merchant=merchant, team_size=2)
    leader, friend = make_customer(db, merchant=merchant), make_customer(db, merchant=merchant)
    first = paid(db, team_buy_order(db, customer=leader, campaign=campaign))
    staff = principal_of(db, make_staff(db, merchant=merchant))
    # then the paid order is on hold: it cannot be shipped while the team is forming
    assert first.fulfilment_hold == "team_forming"
    with pytest.raises(AppError) as exc:
        orders.ship_order(db, first.id, actor=staff, carrier="顺丰", tracking_no="SF123456")
    assert exc.value.code == "order_on_hold"
    # when a friend joins and pays, completing the team
    second = paid(db, team_buy_order(db, customer=friend, campaign=campaign, team=team_of(db, first)))
    db.refresh(first)
    # then both orders are released and ship normally
    assert (first.fulfilment_hold, second.fulfilment_hold) == (None, None)
    shipped = orders.ship_order(db, first.id, actor=staff, carrier="顺丰", tracking_no="SF123456")
    assert shipped.status == "shipped"
    notes = [h.note for h in orders.history_of(db, first.id)]
    assert "On hold: team_forming" in notes and "Hold released: team_forming" in notes
