"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — REST routes."""

from fastapi import APIRouter

router = APIRouter(tags=["promotions"])
