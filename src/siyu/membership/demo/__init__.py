"""The membership demo data, one module per area."""

from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext
from siyu.membership.demo import members, stored_value


def seed(session: Session, ctx: DemoContext) -> None:
    members.seed(session, ctx)
    stored_value.seed(session, ctx)
