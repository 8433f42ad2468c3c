"""promotions: coupon templates, claiming, my coupons, the coupon contributor and the best-coupon suggestion — REST routes."""

from fastapi import APIRouter

router = APIRouter(tags=["promotions"])
