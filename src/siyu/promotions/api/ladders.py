"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — REST routes."""

from fastapi import APIRouter

router = APIRouter(tags=["promotions"])
