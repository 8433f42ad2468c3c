"""promotions: split coupons (好友瓜分券): pools opened by a customer, joined by friends, split into coupons — demo data."""

from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
