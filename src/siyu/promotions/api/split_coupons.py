"""promotions: split coupons (好友瓜分券): pools opened by a customer, joined by friends, split into coupons — REST routes."""

from fastapi import APIRouter

router = APIRouter(tags=["promotions"])
