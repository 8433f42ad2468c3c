"""attribution: shares REST routes."""

from fastapi import APIRouter

router = APIRouter(tags=["attribution"])
