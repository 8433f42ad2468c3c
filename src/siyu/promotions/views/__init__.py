"""The promotions views routers, one module per area."""

from fastapi import APIRouter

from siyu.promotions.views import (
    bargains,
    coupons,
    flash_sales,
    ladders,
    overview,
    payment_offers,
    popups,
    split_coupons,
    team_buys,
)

router = APIRouter(include_in_schema=False)
router.include_router(overview.router)
router.include_router(coupons.router)
router.include_router(split_coupons.router)
router.include_router(flash_sales.router)
router.include_router(team_buys.router)
router.include_router(bargains.router)
router.include_router(ladders.router)
router.include_router(payment_offers.router)
router.include_router(popups.router)
