"""promotions: team purchase (多人拼团): campaigns, teams opened by a first paid order, joins, completion, refunds — console and H5 pages."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
