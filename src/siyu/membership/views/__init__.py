"""The membership views routers, one module per area."""

from fastapi import APIRouter

from siyu.membership.views import members, stored_value

router = APIRouter(include_in_schema=False)
router.include_router(members.router)
router.include_router(stored_value.router)
