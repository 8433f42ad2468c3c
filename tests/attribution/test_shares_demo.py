"""The demo's sharing history: counter codes for every store and guide, shares by guides and customers,
touches whose fission edges form trees more than one level deep, and a funnel from exposure to pay."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from siyu.attribution.models.shares import FissionEdge, FunnelEvent, Share, Touch
from siyu.attribution.service import fission
from siyu.attribution.service.funnel import FUNNEL_KINDS
from siyu.demo import demo_now, seed_demo
from tests.conftest import fresh_database


def test_the_demo_has_sharing_with_structure() -> None:
    database = fresh_database("sqlite", name="shares_demo")
    try:
        ctx = seed_demo(database, scale=0.1, now=demo_now(dt.date(2026, 5, 20)))
        with database.scope() as session:
            m = ctx.merchant_id
            channels = dict(session.execute(select(Share.channel, func.count()).where(Share.merchant_id == m)
                                            .group_by(Share.channel)).all())
            assert channels["store_qr"] == len(ctx.store_ids) and channels["guide_qr"] == len(ctx.guide_ids)
            assert session.scalar(select(func.count()).select_from(Share).where(
                Share.merchant_id == m, Share.sharer_customer_id.is_not(None))) > 0
            touches = session.scalar(select(func.count()).select_from(Touch).where(Touch.merchant_id == m))
            edges = session.scalar(select(func.count()).select_from(FissionEdge).where(FissionEdge.merchant_id == m))
            assert touches > edges > 0
            kinds = set(session.scalars(select(FunnelEvent.kind).where(FunnelEvent.merchant_id == m).distinct()))
            assert kinds == set(FUNNEL_KINDS.values())
            best = fission.sharer_stats(session, merchant_id=m, kind="customer", limit=1)[0]
            assert best.new_customers > 0 and best.visits >= best.new_customers
            deepest = max(fission.customer_tree(session, merchant_id=m, customer_id=row.id).depth
                          for row in fission.sharer_stats(session, merchant_id=m, kind="customer", limit=20))
            assert deepest >= 2
            staff = fission.sharer_stats(session, merchant_id=m, kind="staff", limit=3)
            assert staff and staff[0].gmv_cents > 0
    finally:
        database.dispose()
