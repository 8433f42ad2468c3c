"""promotions: the marketing landing page (/console/promotions): one card per play with a link to its
pages and, where the play's service offers it, how many of its campaigns are running now."""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.core.templating import render
from siyu.core.web import DbSession
from siyu.merchants.deps import ConsoleStaff

router = APIRouter(include_in_schema=False)

# (service module, path under /console/promotions, title, what it is)
PLAYS = (
    ("coupons", "coupons", "Coupons", "Spend-and-save, discount, no-threshold, free-shipping and exchange coupons."),
    ("split_coupons", "split-coupons", "Split coupons", "Friends open a pool together and split the coupons."),
    ("flash_sales", "flash-sales", "Flash sales", "Limited stock at a special price for a short time."),
    ("team_buys", "team-buys", "Team buys", "A lower price when enough friends buy together."),
    ("bargains", "bargains", "Bargains", "Friends help cut the price down."),
    ("ladders", "ladders", "Ladder prices", "The more people buy, the lower the price."),
    ("payment_offers", "payment-offers", "Payment marketing", "Coupons and rewards after payment."),
    ("popups", "popups", "Pop-ups", "A pop-up in the shop offering a coupon or a campaign."),
)


def running_count(session: Any, area: str, merchant_id: int) -> int | None:
    """The play's running campaigns through its public service: `running_count(session, merchant_id=)`,
    else the length of `running_campaigns(session, merchant_id=)`; None when it offers neither."""
    try:
        module = importlib.import_module(f"siyu.promotions.service.{area}")
    except ImportError:
        return None
    count = getattr(module, "running_count", None)
    if callable(count):
        return int(count(session, merchant_id=merchant_id))
    listing = getattr(module, "running_campaigns", None)
    if callable(listing):
        return len(listing(session, merchant_id=merchant_id))
    return None


@router.get("/console/promotions")
def console_overview(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    cards = [{"area": area, "url": f"/console/promotions/{path}", "title": title, "text": text,
              "running": running_count(session, area, principal.merchant_id)}
             for area, path, title, text in PLAYS]
    return render(request, "promotions/overview.html", {"active_menu": "promotions", "cards": cards})
