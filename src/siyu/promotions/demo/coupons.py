"""promotions: coupon templates, claiming, my coupons, the coupon contributor and the best-coupon suggestion — demo data."""

from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
