"""REST routes of the analytics domain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from siyu.analytics import service
from siyu.core.web import DbSession
from siyu.merchants.deps import Staff

router = APIRouter(tags=["analytics"])


@router.get("/api/v1/admin/analytics/overview")
def overview(session: DbSession, principal: Staff) -> dict[str, Any]:
    """Today's figures (Shanghai day) in the caller's scope: new and total customers, products on
    sale, low-stock SKUs, orders and GMV (`orders_available` is false until orders exist), and new
    customers per day for the last 30 days."""
    return service.overview_dict(service.overview(session, actor=principal))
