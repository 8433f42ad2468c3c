"""The promotions tables, one module per area."""

from siyu.promotions.models import (
    bargains,  # noqa: F401
    coupons,  # noqa: F401
    flash_sales,  # noqa: F401
    ladders,  # noqa: F401
    payment_offers,  # noqa: F401
    popups,  # noqa: F401
    split_coupons,  # noqa: F401
    team_buys,  # noqa: F401
)
