"""promotions: ladder prices (阶梯价): the price falls as participants cross thresholds; differences refunded — console and H5 pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
