"""The promotions demo data, one module per area. Coupons first: the other plays hand out its coupons."""

from sqlalchemy.orm import Session

from siyu.core.demo import DemoContext
from siyu.promotions.demo import (
    bargains,
    coupons,
    flash_sales,
    ladders,
    payment_offers,
    popups,
    split_coupons,
    team_buys,
)


def seed(session: Session, ctx: DemoContext) -> None:
    coupons.seed(session, ctx)
    split_coupons.seed(session, ctx)
    flash_sales.seed(session, ctx)
    team_buys.seed(session, ctx)
    bargains.seed(session, ctx)
    ladders.seed(session, ctx)
    payment_offers.seed(session, ctx)
    popups.seed(session, ctx)
