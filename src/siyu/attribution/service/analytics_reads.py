"""attribution: bulk reads for the analytics domain (funnel events, shares, share visits, fission edges) as
plain tuples, one query each, so analytics never touches these tables itself. Read-only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from siyu.attribution.models.shares import FissionEdge, FunnelEvent, Share, Touch

BATCH = 50_000
# The funnel kinds as stored (see service/funnel.py FUNNEL_KINDS).
KIND_NAMES = {1: "exposure", 2: "view", 3: "add_to_cart", 4: "order", 5: "pay"}


def funnel_event_rows(session: Session, *, merchant_id: int, start: dt.date, end: dt.date,
                      kinds: tuple[str, ...] | None = None, ordered: bool = False,
                      customer_id: int | None = None, visitor_id: str | None = None,
                      people: tuple[list[int], list[str]] | None = None, anonymous: bool = False
                      ) -> Iterator[tuple[dt.date, str, int | None, str | None, str | None, int | None, str | None]]:
    """(day, kind name, customer_id, visitor_id, channel, share_id, campaign of the share) of every funnel
    event on the Shanghai days start..end (inclusive); `ordered`: in (day, time, id) order. Only one
    customer's events when `customer_id` is given, only one anonymous visitor's when `visitor_id` is;
    with `people` (customer ids, anonymous visitor ids) only theirs (`anonymous`: and the events with neither)."""
    stmt = select(FunnelEvent.day, FunnelEvent.kind, FunnelEvent.customer_id, FunnelEvent.visitor_id,
                  FunnelEvent.channel, FunnelEvent.share_id, Share.campaign).outerjoin(
        Share, Share.id == FunnelEvent.share_id).where(
        FunnelEvent.merchant_id == merchant_id, FunnelEvent.day >= start, FunnelEvent.day <= end)
    if kinds is not None:
        codes = [k for k, name in KIND_NAMES.items() if name in kinds]
        stmt = stmt.where(FunnelEvent.kind.in_(codes))
    if customer_id is not None:
        stmt = stmt.where(FunnelEvent.customer_id == customer_id)
    elif visitor_id is not None:
        stmt = stmt.where(FunnelEvent.visitor_id == visitor_id, FunnelEvent.customer_id.is_(None))
    elif people is not None:
        anon = FunnelEvent.visitor_id.in_(people[1])
        if anonymous:
            anon = or_(anon, FunnelEvent.visitor_id.is_(None))
        stmt = stmt.where(or_(FunnelEvent.customer_id.in_(people[0]), and_(FunnelEvent.customer_id.is_(None), anon)))
    if ordered:
        stmt = stmt.order_by(FunnelEvent.day, FunnelEvent.at, FunnelEvent.id)
    for day, kind, customer_id, visitor_id, channel, share_id, campaign in session.execute(
            stmt.execution_options(yield_per=BATCH)):
        yield day, KIND_NAMES.get(int(kind), str(kind)), customer_id, visitor_id, channel, share_id, campaign


def funnel_events_select(dialect: str, *, merchant_id: int, end: dt.date) -> Select[Any]:
    """The merchant's funnel events (the five kinds) on the Shanghai days up to `end` as a Select for
    set-based work in the database (the people rebuild: INSERT … SELECT): kind, day, at, event_id,
    customer_id, visitor_id, channel, campaign (of the event's share; None without)."""
    e = FunnelEvent
    # SQLite would walk (merchant_id, day, kind) and fetch nearly every row out of order; "+ 0" keeps it
    # off that index (as `orders.paid_goods_select` does): reading the table through is several times faster.
    sqlite = dialect == "sqlite"
    merchant, day = (e.merchant_id + 0, func.coalesce(e.day, e.day)) if sqlite else (e.merchant_id, e.day)
    return select(e.kind.label("kind"), e.day.label("day"), e.at.label("at"), e.id.label("event_id"),
                  e.customer_id.label("customer_id"), e.visitor_id.label("visitor_id"),
                  e.channel.label("channel"), Share.campaign.label("campaign")).outerjoin(
        Share, Share.id == e.share_id).where(merchant == merchant_id, day <= end, e.kind.in_(list(KIND_NAMES)))


def funnel_people_since(session: Session, *, merchant_id: int, day: dt.date, since: dt.datetime
                        ) -> set[tuple[int | None, str | None]]:
    """(customer_id, visitor_id) of everyone with a funnel event on the Shanghai day `day` recorded at or
    after `since` (the people whose day changed since then)."""
    return {(c, v) for c, v in session.execute(
        select(FunnelEvent.customer_id, FunnelEvent.visitor_id).where(
            FunnelEvent.merchant_id == merchant_id, FunnelEvent.day == day, FunnelEvent.at >= since,
            FunnelEvent.kind.in_(list(KIND_NAMES))).distinct())}


def first_funnel_day(session: Session, *, merchant_id: int) -> dt.date | None:
    """The Shanghai day of the merchant's first funnel event (None: none yet)."""
    return session.scalar(select(func.min(FunnelEvent.day)).where(FunnelEvent.merchant_id == merchant_id))


def share_rows(session: Session, *, merchant_id: int, start: dt.datetime | None = None, end: dt.datetime | None = None
               ) -> list[tuple[int, int | None, int | None, str | None, str, int, str, dt.datetime]]:
    """(id, sharer_staff_id, sharer_customer_id, campaign, target_type, target_id, channel, created_at) of the
    shares created in [start, end)."""
    stmt = select(Share.id, Share.sharer_staff_id, Share.sharer_customer_id, Share.campaign, Share.target_type,
                  Share.target_id, Share.channel, Share.created_at).where(Share.merchant_id == merchant_id)
    if start is not None:
        stmt = stmt.where(Share.created_at >= start)
    if end is not None:
        stmt = stmt.where(Share.created_at < end)
    return [tuple(r) for r in session.execute(stmt.order_by(Share.id))]  # type: ignore[misc]


def share_visit_counts(session: Session, *, merchant_id: int, start: dt.datetime, end: dt.datetime
                       ) -> list[tuple[int, int]]:
    """(share_id, touches) for the touches made through a share in [start, end)."""
    stmt = select(Touch.share_id, func.count()).where(
        Touch.merchant_id == merchant_id, Touch.share_id.is_not(None), Touch.at >= start, Touch.at < end
    ).group_by(Touch.share_id)
    return [(int(s), int(n)) for s, n in session.execute(stmt)]


def fission_edge_rows(session: Session, *, merchant_id: int, end: dt.datetime | None = None
                      ) -> list[tuple[int, int | None, int | None, int | None, str | None, dt.datetime]]:
    """(customer_id, by_customer_id, by_staff_id, share_id, campaign, at) of every fission edge made before
    `end`: who brought each customer."""
    stmt = select(FissionEdge.customer_id, FissionEdge.by_customer_id, FissionEdge.by_staff_id, FissionEdge.share_id,
                  FissionEdge.campaign, FissionEdge.at).where(FissionEdge.merchant_id == merchant_id)
    if end is not None:
        stmt = stmt.where(FissionEdge.at < end)
    return [tuple(r) for r in session.execute(stmt.order_by(FissionEdge.at, FissionEdge.id))]  # type: ignore[misc]
