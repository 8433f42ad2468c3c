"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — demo data."""

from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
