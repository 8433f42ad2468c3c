"""Demo analytics: saved RFM segments a brand and a guide would keep (the members are recomputed from the
demo's year of orders whenever they are opened), and the aggregates the views read, rebuilt from the demo's
orders and funnel events (analytics seeds after every domain below it). Deterministic: only ctx.now."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.analytics.models import SavedSegment
from siyu.analytics.service import aggregates
from siyu.core.demo import DemoContext

SEGMENTS = (("重要挽留客户", "cant_lose"), ("沉睡唤醒", "hibernating"), ("高价值客户回馈", "champions"))


def seed(session: Session, ctx: DemoContext) -> None:
    for name, segment in SEGMENTS:
        session.add(SavedSegment(merchant_id=ctx.merchant_id, name=name, segment=segment, created_at=ctx.now))
    if ctx.guide_ids:
        guide = ctx.guide_ids[0]
        session.add(SavedSegment(merchant_id=ctx.merchant_id, name="我的流失风险客户", segment="at_risk",
                                 store_id=ctx.guide_store.get(guide), owner_id=guide, created_at=ctx.now))
    session.flush()
    aggregates.rebuild(session, merchant_id=ctx.merchant_id)
