"""The attribution views routers, one module per area."""

from fastapi import APIRouter

from siyu.attribution.views import ownership, shares

router = APIRouter(include_in_schema=False)
router.include_router(shares.router)
router.include_router(ownership.router)
