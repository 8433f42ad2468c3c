"""Analytics, the top domain: the console overview (this module) and the views merchants act on, one
module each (rfm, funnel, fission, gmv, channel_mix, cohorts, leaderboard), all re-exported here.

The console overview: today's figures (a Shanghai calendar day), stock alerts and the trend of
new customers. Analytics is the top domain: it reads the lower domains only through their service
functions, and passes the caller along so that a guide sees figures for their own customers only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
from typing import Any

from sqlalchemy.orm import Session

from siyu import _has_module
from siyu.analytics.service.channel_mix import ChannelMix, channel_mix, channel_mix_dict
from siyu.analytics.service.cohorts import Cohorts, cohorts, cohorts_dict
from siyu.analytics.service.common import GROUP_LABELS, GROUPS, Filters, make_filters
from siyu.analytics.service.fission import FissionReport, fission, fission_dict
from siyu.analytics.service.funnel import STEPS, Funnel, funnel, funnel_dict
from siyu.analytics.service.gmv import Decomposition, decompose, decomposition_dict
from siyu.analytics.service.leaderboard import GuideRow, leaderboard, leaderboard_dict
from siyu.analytics.service.rfm import (
    SEGMENT_ACTIONS,
    SEGMENT_LABELS,
    SEGMENTS,
    MemberPage,
    RfmReport,
    delete_segment,
    get_segment,
    list_segments,
    member_csv,
    rfm,
    rfm_dict,
    save_segment,
    segment_member_ids,
    segment_members,
)
from siyu.analytics.service.settings import Settings, get_settings, settings_dict, update_settings
from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.customers import service as customers

TREND_DAYS = 30
LOW_STOCK_THRESHOLD = 10
LOW_STOCK_LIMIT = 20
# Customers are counted from here on when "all of them" is asked for.
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class OrderFigures:
    """Today's orders, GMV and the order alerts. `available` is False while no orders domain is
    installed, so the page can say so instead of showing a zero that looks measured."""

    available: bool
    orders: int = 0
    paid_orders: int = 0
    gmv_cents: int = 0
    pending_shipments: int = 0
    pending_pickups: int = 0
    refunds_waiting: int = 0


@dataclasses.dataclass(frozen=True)
class Overview:
    day: dt.date
    new_customers_today: int
    total_customers: int
    products_on_sale: int
    low_stock: list[dict[str, Any]]
    orders: OrderFigures
    # (day, count) for each of the last TREND_DAYS days, oldest first, zero-filled.
    new_customers_by_day: list[tuple[dt.date, int]]
    low_stock_threshold: int = LOW_STOCK_THRESHOLD


def order_figures(session: Session, *, actor: Principal) -> OrderFigures:
    """Today's order figures in the actor's scope, from `siyu.orders.service.today_figures` (the
    orders domain sits below analytics and plugs in here; without it the figures are unavailable,
    not zero)."""
    name = "siyu.orders.service"
    if not _has_module(name):
        return OrderFigures(available=False)
    fn = getattr(importlib.import_module(name), "today_figures", None)
    if fn is None:
        return OrderFigures(available=False)
    f = fn(session, merchant_id=actor.merchant_id, principal=actor)
    return OrderFigures(available=True, orders=int(f.get("orders_today", 0)), paid_orders=int(f.get("paid_orders_today", 0)),
                        gmv_cents=int(f.get("gmv_today_cents", 0)), pending_shipments=int(f.get("pending_shipments", 0)),
                        pending_pickups=int(f.get("pending_pickups", 0)), refunds_waiting=int(f.get("refunds_waiting", 0)))


def new_customers_trend(session: Session, *, actor: Principal, today: dt.date,
                        days: int = TREND_DAYS) -> list[tuple[dt.date, int]]:
    """New customers per Shanghai day for the `days` days ending today, oldest first, zero-filled."""
    first = today - dt.timedelta(days=days - 1)
    start, _ = clock.local_day_bounds(first)
    _, end = clock.local_day_bounds(today)
    rows = customers.new_customers_by_day(session, merchant_id=actor.merchant_id, start=start, end=end, actor=actor)
    counts = {day: int(n) for day, n in rows}
    return [(first + dt.timedelta(days=i), counts.get(first + dt.timedelta(days=i), 0)) for i in range(days)]


def overview(session: Session, *, actor: Principal) -> Overview:
    """The overview for the actor's scope today (the current Shanghai day). Customer figures follow
    the role scope (a guide: their own customers); the catalogue is the brand's, the same for all."""
    today = clock.today_local()
    start, end = clock.local_day_bounds(today)

    def new_customers(since: dt.datetime) -> int:
        return int(customers.count_new_customers(session, merchant_id=actor.merchant_id, start=since, end=end,
                                                 actor=actor))

    return Overview(
        day=today,
        new_customers_today=new_customers(start),
        total_customers=new_customers(_EPOCH),
        products_on_sale=int(catalog.count_products(session, merchant_id=actor.merchant_id, status="on_sale")),
        low_stock=list(catalog.low_stock_skus(session, merchant_id=actor.merchant_id,
                                              threshold=LOW_STOCK_THRESHOLD, limit=LOW_STOCK_LIMIT)),
        orders=order_figures(session, actor=actor),
        new_customers_by_day=new_customers_trend(session, actor=actor, today=today),
    )


def overview_dict(ov: Overview) -> dict[str, Any]:
    """The overview as the API answers it."""
    return {
        "day": ov.day.isoformat(),
        "new_customers_today": ov.new_customers_today,
        "total_customers": ov.total_customers,
        "products_on_sale": ov.products_on_sale,
        "low_stock_threshold": ov.low_stock_threshold,
        "low_stock_skus": [
            {"sku_id": s["sku_id"], "product_id": s["product_id"], "title": s["title"], "spec": s.get("spec"),
             "stock": s["stock"]}
            for s in ov.low_stock
        ],
        "orders_available": ov.orders.available,
        "orders_today": ov.orders.orders,
        "paid_orders_today": ov.orders.paid_orders,
        "gmv_today_cents": ov.orders.gmv_cents,
        "pending_shipments": ov.orders.pending_shipments,
        "pending_pickups": ov.orders.pending_pickups,
        "refunds_waiting": ov.orders.refunds_waiting,
        "new_customers_by_day": [{"day": d.isoformat(), "count": n} for d, n in ov.new_customers_by_day],
    }


__all__ = [
    "GROUPS", "GROUP_LABELS", "SEGMENTS", "SEGMENT_ACTIONS", "SEGMENT_LABELS", "STEPS", "ChannelMix", "Cohorts",
    "Decomposition", "Filters", "FissionReport", "Funnel", "GuideRow", "MemberPage", "OrderFigures", "Overview", "RfmReport",
    "Settings", "channel_mix", "channel_mix_dict", "cohorts", "cohorts_dict", "decompose", "decomposition_dict",
    "delete_segment", "fission", "fission_dict", "funnel", "funnel_dict", "get_segment", "get_settings",
    "leaderboard", "leaderboard_dict", "list_segments", "make_filters", "member_csv",
    "new_customers_trend", "order_figures", "overview", "overview_dict", "rfm", "rfm_dict", "save_segment",
    "segment_member_ids", "segment_members", "settings_dict", "update_settings",
]
