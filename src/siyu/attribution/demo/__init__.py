"""The attribution demo data, one module per area."""

from sqlalchemy.orm import Session

from siyu.attribution.demo import ownership, shares
from siyu.core.demo import DemoContext


def seed(session: Session, ctx: DemoContext) -> None:
    shares.seed(session, ctx)
    ownership.seed(session, ctx)
