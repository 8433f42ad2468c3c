"""promotions: split coupons (好友瓜分券): pools opened by a customer, joined by friends, split into coupons — console and H5 pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
