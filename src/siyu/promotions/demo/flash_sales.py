"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — demo data."""

from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
