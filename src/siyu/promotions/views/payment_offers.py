"""promotions: payment marketing (支付营销): what the payment result page offers, claims and click-throughs — console and H5 pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
