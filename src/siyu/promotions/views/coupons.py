"""promotions: coupon templates, claiming, my coupons, the coupon contributor and the best-coupon suggestion — console and H5 pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
