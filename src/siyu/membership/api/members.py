"""membership: members REST routes."""

from fastapi import APIRouter

router = APIRouter(tags=["membership"])
