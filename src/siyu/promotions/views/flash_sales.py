"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — console and H5 pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
