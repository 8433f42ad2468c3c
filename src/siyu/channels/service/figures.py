"""What the console shows: subscription figures, per-code and per-guide counts, the inbound log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.channels.models import (
    ChannelEvent,
    InboundMessage,
    OaFollower,
    OaQrCode,
    WecomContact,
    WecomContactWay,
)
from siyu.core import clock
from siyu.core.auth import Principal, scoped
from siyu.core.pagination import Page, paginate

OUTCOMES = ("processed", "duplicate", "ignored", "rejected")
CHANNELS = ("oa", "wecom")


def subscription_figures(session: Session, *, actor: Principal, days: int = 30) -> dict[str, Any]:
    """Followers now, ever, unsubscribed; subscriptions and unsubscriptions in the last `days`; and
    WeCom contacts active and removed. Merchant-wide figures (the brand's view)."""
    m = actor.merchant_id
    since = clock.now() - dt.timedelta(days=days)
    followers = dict(session.execute(select(OaFollower.subscribed, func.count(OaFollower.id))
                                     .where(OaFollower.merchant_id == m).group_by(OaFollower.subscribed)).all())
    recent = dict(session.execute(
        select(ChannelEvent.kind, func.count(ChannelEvent.id))
        .where(ChannelEvent.merchant_id == m, ChannelEvent.happened_at >= since).group_by(ChannelEvent.kind)).all())
    contacts = dict(session.execute(select(WecomContact.status, func.count(WecomContact.id))
                                    .where(WecomContact.merchant_id == m).group_by(WecomContact.status)).all())
    return {
        "days": days,
        "subscribed": int(followers.get(True, 0)),
        "unsubscribed": int(followers.get(False, 0)),
        "followers_ever": int(sum(followers.values())),
        "subscribes_recent": int(recent.get("subscribe", 0)),
        "scans_recent": int(recent.get("scan", 0)),
        "unsubscribes_recent": int(recent.get("unsubscribe", 0)),
        "wecom_adds_recent": int(recent.get("add_contact", 0)),
        "wecom_active": int(contacts.get("active", 0)),
        "wecom_removed": int(sum(v for k, v in contacts.items() if k != "active")),
    }


def code_counts(session: Session, *, actor: Principal, code_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per QR code: subscriptions and scans it brought, and its followers still subscribed."""
    out: dict[int, dict[str, int]] = {i: {"subscribes": 0, "scans": 0, "followers": 0} for i in code_ids}
    if not code_ids:
        return out
    for code_id, kind, n in session.execute(
            select(ChannelEvent.qr_code_id, ChannelEvent.kind, func.count(ChannelEvent.id))
            .where(ChannelEvent.merchant_id == actor.merchant_id, ChannelEvent.qr_code_id.in_(code_ids))
            .group_by(ChannelEvent.qr_code_id, ChannelEvent.kind)):
        if kind in ("subscribe", "scan"):
            out[code_id][kind + "s"] = int(n)
    for code_id, n in session.execute(
            select(OaFollower.qr_code_id, func.count(OaFollower.id))
            .where(OaFollower.merchant_id == actor.merchant_id, OaFollower.qr_code_id.in_(code_ids),
                   OaFollower.subscribed.is_(True)).group_by(OaFollower.qr_code_id)):
        out[code_id]["followers"] = int(n)
    return out


def contact_counts(session: Session, *, actor: Principal, staff_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per guide: WeCom contacts active and removed."""
    out: dict[int, dict[str, int]] = {i: {"active": 0, "removed": 0} for i in staff_ids}
    if not staff_ids:
        return out
    for staff_id, status, n in session.execute(
            select(WecomContact.staff_id, WecomContact.status, func.count(WecomContact.id))
            .where(WecomContact.merchant_id == actor.merchant_id, WecomContact.staff_id.in_(staff_ids))
            .group_by(WecomContact.staff_id, WecomContact.status)):
        out[staff_id]["active" if status == "active" else "removed"] += int(n)
    return out


def list_inbound(session: Session, *, actor: Principal, channel: str | None = None, outcome: str | None = None,
                 cursor: str | None = None, limit: int | None = None) -> Page[InboundMessage]:
    """The inbound callback log, newest first (the brand's view: it holds openids)."""
    actor.require("merchant.manage")
    stmt = scoped(select(InboundMessage), InboundMessage, actor)
    if channel in CHANNELS:
        stmt = stmt.where(InboundMessage.channel == channel)
    if outcome in OUTCOMES:
        stmt = stmt.where(InboundMessage.outcome == outcome)
    return paginate(session, stmt, InboundMessage.id, cursor=cursor, limit=limit)


def events_of_customer(session: Session, *, merchant_id: int, customer_id: int, limit: int = 50) -> list[ChannelEvent]:
    return list(session.scalars(select(ChannelEvent).where(
        ChannelEvent.merchant_id == merchant_id, ChannelEvent.customer_id == customer_id)
        .order_by(ChannelEvent.id.desc()).limit(limit)))


def follower_of(session: Session, *, merchant_id: int, openid: str) -> OaFollower | None:
    return session.scalars(select(OaFollower).where(OaFollower.merchant_id == merchant_id,
                                                    OaFollower.openid == openid)).first()


def contact_ways_by_staff(session: Session, *, actor: Principal) -> dict[int, WecomContactWay]:
    return {w.staff_id: w for w in session.scalars(scoped(select(WecomContactWay), WecomContactWay, actor))}


def codes_by_target(session: Session, *, actor: Principal) -> dict[str, OaQrCode]:
    return {c.target_key: c for c in session.scalars(scoped(select(OaQrCode), OaQrCode, actor))}
