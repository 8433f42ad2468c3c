"""The membership api routers, one module per area."""

from fastapi import APIRouter

from siyu.membership.api import members, stored_value

router = APIRouter()
router.include_router(members.router)
router.include_router(stored_value.router)
