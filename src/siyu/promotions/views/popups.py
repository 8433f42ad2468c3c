"""promotions: interactive pop-ups (互动营销) on the H5 shop: audiences, frequency caps, conversions — console and H5 pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
