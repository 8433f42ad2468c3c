"""promotions: the marketing landing page (/console/promotions): one card per play with a link to its
pages and how many of its campaigns are running now."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.core.templating import render
from siyu.core.web import DbSession
from siyu.merchants.deps import ConsoleStaff
from siyu.promotions.service import (
    bargains,
    coupons,
    flash_sales,
    ladders,
    payment_offers,
    popups,
    split_coupons,
    team_buys,
)

router = APIRouter(include_in_schema=False)

# (service module, path under /console/promotions, title, what it is); each service has `running_count`.
PLAYS = (
    (coupons, "coupons", "Coupons", "Spend-and-save, discount, no-threshold, free-shipping and exchange coupons."),
    (split_coupons, "split-coupons", "Split coupons", "Friends open a pool together and split the coupons."),
    (flash_sales, "flash-sales", "Flash sales", "Limited stock at a special price for a short time."),
    (team_buys, "team-buys", "Team buys", "A lower price when enough friends buy together."),
    (bargains, "bargains", "Bargains", "Friends help cut the price down."),
    (ladders, "ladders", "Ladder prices", "The more people buy, the lower the price."),
    (payment_offers, "payment-offers", "Payment marketing", "Coupons and rewards after payment."),
    (popups, "popups", "Pop-ups", "A pop-up in the shop offering a coupon or a campaign."),
)


@router.get("/console/promotions")
def console_overview(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    cards = [{"area": service.__name__.rsplit(".", 1)[-1], "url": f"/console/promotions/{path}", "title": title, "text": text,
              "running": service.running_count(session, merchant_id=principal.merchant_id)}
             for service, path, title, text in PLAYS]
    return render(request, "promotions/overview.html", {"active_menu": "promotions", "cards": cards})
