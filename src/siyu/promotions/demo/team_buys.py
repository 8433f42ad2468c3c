"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — demo data.

A running campaign (team of 3, 24 hours to fill) with two complete teams, a team that failed three
days ago (its members refunded through the sandbox), and forming teams opened in the last hours that
customers can join; plus a lucky-draw campaign scheduled for next week. Every order goes through checkout and a
real sandbox payment; the reactions the event handlers would run after the commit are called in
place (they are idempotent, so the later run changes nothing).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.demo import DemoContext
from siyu.orders.schemas import CheckoutRequest
from siyu.promotions.demo.common import pay_in_sandbox
from siyu.promotions.schemas.team_buys import TeamBuyIn
from siyu.promotions.service import team_buys as service

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
ADDRESS = {"name": "李娜", "phone": "13800001111", "province": "上海市", "city": "上海市", "district": "浦东新区",
           "detail": "世纪大道 100 号"}


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
    customer_ids = list(ctx.data.get("customer_ids") or [])
    on_sale = list(ctx.data.get("on_sale_skus") or [])
    if ctx.admin is None or len(customer_ids) < 40 or len(on_sale) < 2:
        return
    _seed(session, ctx, customer_ids, on_sale)


def _pick_skus(session: Session, ctx: DemoContext, on_sale: list[dict]) -> list[dict]:
    stock = catalog.stock_of(session, merchant_id=ctx.merchant_id, sku_ids=[s["sku_id"] for s in on_sale])
    candidates = [s for s in on_sale if stock.get(s["sku_id"], 0) >= 40 and s["price_cents"] >= 1000]
    ctx.rng.shuffle(candidates)
    chosen, products = [], set()
    for s in candidates:
        if s["product_id"] not in products:
            chosen.append(s)
            products.add(s["product_id"])
        if len(chosen) == 2:
            break
    return chosen


def _team_price(price_cents: int) -> int:
    return max(100, price_cents * 7 // 10 // 10 * 10)


def _seed(session: Session, ctx: DemoContext, customer_ids: list[int], on_sale: list[dict]) -> None:
    skus = _pick_skus(session, ctx, on_sale)
    if len(skus) < 2:
        return
    now, admin = ctx.now, ctx.admin
    assert admin is not None
    main, later = skus
    with clock.frozen(now - 4 * DAY):
        campaign = service.create_campaign(session, actor=admin, data=TeamBuyIn(
            title="三人拼团 · 限时特惠", description="三人成团享拼团价，24 小时内未成团自动退款。",
            skus=[{"sku_id": main["sku_id"], "team_price_cents": _team_price(main["price_cents"])}], team_size=3,
            time_limit_minutes=24 * 60, per_customer_limit=3, starts_at=now - 3 * DAY, ends_at=now + 10 * DAY,
            on_full="refund"))
        service.change_status(session, campaign.id, actor=admin, action="schedule")
        upcoming = service.create_campaign(session, actor=admin, data=TeamBuyIn(
            title="三人抽奖团 · 下周上新", description="三人成团后抽 1 人发货，其余自动退款。",
            skus=[{"sku_id": later["sku_id"], "team_price_cents": _team_price(later["price_cents"]) // 2}],
            team_size=3, time_limit_minutes=12 * 60, starts_at=now + 7 * DAY, ends_at=now + 14 * DAY,
            on_full="new_team", lucky_draw=True, lucky_winners=1))
        service.change_status(session, upcoming.id, actor=admin, action="schedule")
    with clock.frozen(now - 3 * DAY + HOUR):
        service.run_clock(session, clock.now())

    buyers = iter(customer_ids[25:25 + 40])

    def buy(at: dt.datetime, team_id: int | None = None) -> int | None:
        """One customer's order (a new team, or joining `team_id`), paid in the sandbox at `at`."""
        customer_id = next(buyers)
        promotion = {"kind": "team_buy", "campaign_id": campaign.id, **({"team_id": team_id} if team_id else {})}
        request = CheckoutRequest.model_validate({"items": [{"sku_id": main["sku_id"], "quantity": 1}],
                                                  "fulfilment": {"type": "delivery", "address": ADDRESS},
                                                  "promotion": promotion})
        order_id = pay_in_sandbox(session, ctx, customer_id=customer_id, request=request, at=at,
                                  then=lambda order_id: service.record_paid(session, merchant_id=ctx.merchant_id,
                                                                            order_id=order_id, now=at))
        if order_id is None:
            return None
        member = service.member_of_order(session, merchant_id=ctx.merchant_id, order_id=order_id)
        return member.team_id if member else None

    # Two teams that filled, one that failed (its time ran out with one seat empty).
    for opened in (now - 3 * DAY + 2 * HOUR, now - 2 * DAY + 5 * HOUR):
        team_id = buy(opened)
        if team_id:
            buy(opened + 3 * HOUR, team_id)
            buy(opened + 7 * HOUR, team_id)
    failed = buy(now - 3 * DAY + 4 * HOUR)
    if failed:
        buy(now - 3 * DAY + 9 * HOUR, failed)
    with clock.frozen(now - 2 * DAY + 6 * HOUR):
        service.expire_due(session, clock.now())
    # Forming teams opened in the last hours before "now": one waiting for two, one for one.
    buy(now - 3 * HOUR)
    second = buy(now - 2 * HOUR)
    if second:
        buy(now - HOUR, second)
    ctx.data["team_buy_campaign_ids"] = [campaign.id, upcoming.id]
    session.flush()
