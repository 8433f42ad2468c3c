"""attribution: ownership REST routes."""

from fastapi import APIRouter

router = APIRouter(tags=["attribution"])
