"""The attribution api routers, one module per area."""

from fastapi import APIRouter

from siyu.attribution.api import ownership, shares

router = APIRouter()
router.include_router(shares.router)
router.include_router(ownership.router)
