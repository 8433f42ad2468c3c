"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — demo data."""

from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
