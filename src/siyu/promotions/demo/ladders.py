"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — demo data."""

from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
