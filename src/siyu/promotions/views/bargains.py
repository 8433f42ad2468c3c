"""promotions: bargains (砍价): a customer's bargain, friends' assists cutting the price towards the floor — console and H5 pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
