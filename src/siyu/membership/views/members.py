"""membership: members console and H5 pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
