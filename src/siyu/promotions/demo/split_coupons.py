"""promotions: split coupons (好友瓜分券) — demo data.

Two live campaigns: ¥30 for three people split equally, and ¥50 for five split at random with a ¥3 floor.
Pools opened over the last days by demo customers: some split (everyone's coupon issued), some still
open and waiting for friends, some expired. Pool seeds come from the demo's generator, so builds agree.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.demo import DemoContext
from siyu.promotions.service import coupons as coupon_service
from siyu.promotions.service import split_coupons as service

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def _customer(ctx: DemoContext, customer_id: int) -> Principal:
    return Principal(merchant_id=ctx.merchant_id, kind="customer", subject_id=customer_id)


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
    customer_ids = list(ctx.data.get("customer_ids") or [])
    if not ctx.merchant_id or ctx.admin is None or len(customer_ids) < 12:
        return
    rng, now, admin = ctx.rng, ctx.now, ctx.admin
    with clock.frozen(now - 10 * DAY):
        template = coupon_service.create_template(
            session, actor=admin, publish=True, name="好友瓜分券", kind="fixed", amount_cents=100,
            description="好友一起瓜分的无门槛券", validity="relative", valid_days=30, per_customer_limit=50,
            channels=["split"])
        equal = service.create_campaign(session, actor=admin, data=service.SplitCampaignIn(
            name="3 人瓜分 30 元", template_id=template.id, pool_amount_cents=3000, team_size=3, split_mode="equal",
            fill_minutes=24 * 60, max_opens_per_customer=3, starts_at=now - 10 * DAY, ends_at=now + 20 * DAY))
        lucky = service.create_campaign(session, actor=admin, data=service.SplitCampaignIn(
            name="5 人拼手气瓜分 50 元", template_id=template.id, pool_amount_cents=5000, team_size=5,
            split_mode="random", floor_cents=300, fill_minutes=12 * 60, max_opens_per_customer=2,
            starts_at=now - 10 * DAY, ends_at=now + 20 * DAY))
        for c in (equal, lucky):
            service.change_status(session, c.id, actor=admin, action="publish")
    people = rng.sample(customer_ids, min(len(customer_ids), 60))
    taken = iter(people)
    # (campaign, days ago it opened, friends who join): full teams split, short ones wait or expire.
    plan = [(equal, 6, 2), (equal, 5, 2), (equal, 3, 1), (equal, 2, 2), (equal, 0.2, 1), (equal, 0.1, 0),
            (lucky, 4, 4), (lucky, 2, 2), (lucky, 1, 4), (lucky, 0.15, 2), (lucky, 0.05, 3)]
    pool_ids: list[int] = []
    for campaign, days_ago, friends in plan:
        opened_at = (now - dt.timedelta(days=days_ago)).replace(microsecond=0)
        with clock.frozen(opened_at):
            pool = service.open_pool(session, actor=_customer(ctx, next(taken)), campaign_id=campaign.id)
            pool.seed = rng.getrandbits(48)
            session.flush()
        for i in range(friends):
            with clock.frozen(opened_at + (i + 1) * dt.timedelta(minutes=rng.randint(5, 90))):
                service.join_pool(session, actor=_customer(ctx, next(taken)), pool_id=pool.id)
        pool_ids.append(pool.id)
    service.expire_due(session, now)
    ctx.data["split_campaign_ids"] = [equal.id, lucky.id]
    ctx.data["split_pool_ids"] = pool_ids
