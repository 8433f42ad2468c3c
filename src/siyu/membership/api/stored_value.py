"""membership: stored_value REST routes."""

from fastapi import APIRouter

router = APIRouter(tags=["membership"])
