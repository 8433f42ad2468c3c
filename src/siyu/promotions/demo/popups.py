"""promotions: interactive pop-ups (互动营销) on the H5 shop: audiences, frequency caps, conversions — demo data."""

from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext


def seed(session: Session, ctx: DemoContext) -> None:
    """Live campaigns of this kind for the demo merchant."""
