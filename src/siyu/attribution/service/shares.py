"""attribution: shares (codes, QR, posters), touches, the visitor cookie, funnel events, fission figures.

The contract other modules rely on (keep the signature):

    record_touch(session, *, merchant_id, channel, customer_id=None, visitor_id=None, share_code=None,
                 sharer_staff_id=None, sharer_customer_id=None, target_type=None, target_id=None,
                 campaign=None, at=None) -> Touch

writes one touch row and, when the customer is known, hands it to `ownership.apply_touch` so the
binding rules run. Channels (`CHANNELS`) are the merchants' words for where a touch came from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from siyu.attribution.models.shares import FissionEdge, FunnelEvent, Share, Touch
from siyu.attribution.service import ownership
from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import Principal, Role, system_principal
from siyu.core.errors import AppError, NotFound, PermissionDenied, field_error
from siyu.core.i18n import gettext
from siyu.core.pagination import Page, paginate
from siyu.db import execute_core, upsert_insert
from siyu.merchants import service as merchants

CHANNELS = ("store_qr", "guide_qr", "chat", "moments", "community", "live", "ad", "payment", "search", "direct",
            "oa", "wecom")

CHANNEL_LABELS = {
    "store_qr": "Store QR code", "guide_qr": "Guide QR code", "chat": "Chat share", "moments": "Moments share",
    "community": "Community", "live": "Live", "ad": "Ad", "payment": "Payment page", "search": "Search",
    "direct": "Direct", "oa": "Official account", "wecom": "WeCom",
}

TARGET_TYPES = ("product", "store", "live", "team", "bargain", "coupon", "wave", "page", "team_buy", "split_coupon",
                "flash_sale", "ladder")

TARGET_LABELS = {"product": "Product", "store": "Store", "live": "Live session", "team": "Team buy",
                 "bargain": "Bargain", "coupon": "Coupon", "wave": "Group-buy wave", "page": "Page",
                 "team_buy": "Team-buy campaign", "split_coupon": "Split coupon", "flash_sale": "Flash sale",
                 "ladder": "Ladder price"}

# Unambiguous characters only (no 0/O, 1/l/I): codes are read aloud and typed from posters.
CODE_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10
CODE_RE = re.compile(r"^[0-9A-Za-z]{4,16}$")
VISITOR_RE = re.compile(r"^[0-9A-Za-z_-]{8,40}$")


# ---------------------------------------------------------------- target registry


@dataclasses.dataclass(frozen=True)
class TargetInfo:
    """What a poster and a share page show of a target."""

    title: str
    image_url: str | None = None
    price_cents: int | None = None
    subtitle: str = ""


UrlBuilder = Callable[[str, int], str]
Describer = Callable[[Session, int, int], TargetInfo]


@dataclasses.dataclass(frozen=True)
class _Target:
    url_builder: UrlBuilder
    describe: Describer | None


_targets: dict[str, _Target] = {}


def register_target(target_type: str, url_builder: UrlBuilder, *, describe: Describer | None = None) -> None:
    """Say how a target maps to its H5 page: `url_builder(merchant_slug, target_id) -> "/shop/…"`, and
    optionally `describe(session, merchant_id, target_id) -> TargetInfo` (raising NotFound for a missing
    target). Higher domains (group-buy waves, teams, bargains, live) call this when their service loads."""
    if target_type not in TARGET_TYPES:
        raise ValueError(f"unknown share target type {target_type!r}")
    _targets[target_type] = _Target(url_builder=url_builder, describe=describe)


def registered_targets() -> tuple[str, ...]:
    return tuple(t for t in TARGET_TYPES if t in _targets)


def _target(target_type: str) -> _Target:
    if target_type not in TARGET_TYPES:
        raise field_error("target_type", "Unknown share target.")
    found = _targets.get(target_type)
    if found is None:
        raise AppError("This kind of target cannot be shared yet.", code="target_not_shareable", status_code=422,
                       details={"target_type": target_type})
    return found


def target_url(target_type: str, target_id: int, *, slug: str) -> str:
    """The H5 path a share of this target opens."""
    return _target(target_type).url_builder(slug, target_id)


def describe_target(session: Session, *, merchant_id: int, target_type: str, target_id: int) -> TargetInfo:
    """Title, image and price of a target; NotFound when it does not exist (or is not on show)."""
    found = _target(target_type)
    if found.describe is None:
        return TargetInfo(title=gettext(TARGET_LABELS[target_type]))
    return found.describe(session, merchant_id, target_id)


def _describe_product(session: Session, merchant_id: int, product_id: int) -> TargetInfo:
    product = catalog.get_shop_product(session, merchant_id=merchant_id, product_id=product_id)
    view = catalog.product_view(session, product, active_skus_only=True)
    return TargetInfo(title=view.title, image_url=view.cover, price_cents=view.price_cents, subtitle=view.subtitle)


def _describe_store(session: Session, merchant_id: int, store_id: int) -> TargetInfo:
    store = merchants.get_store(session, store_id, actor=system_principal(merchant_id))
    if not store.active:
        raise NotFound()
    return TargetInfo(title=store.name, subtitle=store.address)


def _describe_page(session: Session, merchant_id: int, target_id: int) -> TargetInfo:
    if target_id != 0:
        raise NotFound()
    return TargetInfo(title=merchants.get_merchant(session, merchant_id).name)


register_target("product", lambda slug, i: f"/shop/{slug}/p/{i}", describe=_describe_product)
register_target("store", lambda slug, i: f"/shop/{slug}/store/{i}", describe=_describe_store)
register_target("page", lambda slug, i: f"/shop/{slug}/", describe=_describe_page)


# ---------------------------------------------------------------- shares


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _unique_code(session: Session) -> str:
    while True:  # 56^10 codes: a collision is a curiosity, but a unique index would turn it into a 500
        code = new_code()
        if session.scalar(select(Share.id).where(Share.code == code)) is None:
            return code


def _check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise field_error("channel", "Unknown channel.")
    return channel


def get_or_create_share(session: Session, *, merchant_id: int, target_type: str, target_id: int = 0, channel: str,
                        sharer_staff_id: int | None = None, sharer_customer_id: int | None = None,
                        campaign: str | None = None) -> Share:
    """The share of this sharer, target and channel: the existing one when there is one, so a sharer who
    shares the same thing twice keeps one code (and one set of figures)."""
    _check_channel(channel)
    if not isinstance(target_id, int) or target_id < 0 or target_id > 2**53:
        raise field_error("target_id", "Unknown share target.")
    describe_target(session, merchant_id=merchant_id, target_type=target_type, target_id=target_id)
    campaign = (campaign or "").strip()[:60] or None
    stmt = select(Share).where(Share.merchant_id == merchant_id, Share.target_type == target_type,
                               Share.target_id == target_id, Share.channel == channel)
    for column, value in ((Share.sharer_staff_id, sharer_staff_id), (Share.sharer_customer_id, sharer_customer_id),
                          (Share.campaign, campaign)):
        stmt = stmt.where(column.is_(None) if value is None else column == value)
    existing = session.scalars(stmt.order_by(Share.id).limit(1)).first()
    if existing is not None:
        return existing
    share = Share(merchant_id=merchant_id, code=_unique_code(session), target_type=target_type, target_id=target_id,
                  sharer_staff_id=sharer_staff_id, sharer_customer_id=sharer_customer_id, channel=channel,
                  campaign=campaign, created_at=clock.now())
    session.add(share)
    session.flush()
    return share


def create_share(session: Session, *, actor: Principal, target_type: str, target_id: int = 0,
                 channel: str | None = None, campaign: str | None = None) -> Share:
    """A share made by a person: a customer (or distributor) in the shop, or a staff member; they are its
    sharer. The default channel is a chat share."""
    if actor.kind == "customer":
        return get_or_create_share(session, merchant_id=actor.merchant_id, target_type=target_type,
                                   target_id=target_id, channel=channel or "chat",
                                   sharer_customer_id=actor.customer_id, campaign=campaign)
    if actor.kind == "staff":
        return get_or_create_share(session, merchant_id=actor.merchant_id, target_type=target_type,
                                   target_id=target_id, channel=channel or "chat", sharer_staff_id=actor.staff_id,
                                   campaign=campaign)
    raise PermissionDenied()


def store_qr_share(session: Session, *, merchant_id: int, store_id: int) -> Share:
    """The store's counter QR code (码的露出): a store_qr share of the store with no person as sharer."""
    return get_or_create_share(session, merchant_id=merchant_id, target_type="store", target_id=store_id,
                               channel="store_qr")


def guide_qr_share(session: Session, *, merchant_id: int, staff_id: int) -> Share:
    """A guide's QR code: a guide_qr share of the guide's store (the shop home without one), by the guide."""
    staff = merchants.get_staff(session, staff_id, actor=system_principal(merchant_id))
    if staff.store_id:
        return get_or_create_share(session, merchant_id=merchant_id, target_type="store", target_id=staff.store_id,
                                   channel="guide_qr", sharer_staff_id=staff.id)
    return get_or_create_share(session, merchant_id=merchant_id, target_type="page", target_id=0, channel="guide_qr",
                               sharer_staff_id=staff.id)


def share_by_code(session: Session, *, merchant_id: int | None = None, code: str) -> Share | None:
    """The share with this code (of this merchant when given), else None."""
    if not isinstance(code, str) or not CODE_RE.match(code):
        return None
    stmt = select(Share).where(Share.code == code)
    if merchant_id is not None:
        stmt = stmt.where(Share.merchant_id == merchant_id)
    return session.scalars(stmt).first()


def get_share(session: Session, code: str) -> Share:
    share = share_by_code(session, code=code)
    if share is None:
        raise NotFound("This share link does not exist.", code="share_not_found")
    return share


def get_share_by_id(session: Session, share_id: int, *, actor: Principal) -> Share:
    share = session.get(Share, share_id) if isinstance(share_id, int) and 0 < share_id < 2**62 else None
    if share is None or share.merchant_id != actor.merchant_id:
        raise NotFound()
    if actor.kind == "staff" and actor.role == Role.GUIDE and share.sharer_staff_id != actor.staff_id:
        raise NotFound()
    return share


def share_links(share: Share, *, base_url: str = "") -> dict[str, str]:
    """The public URLs of a share: the link itself, its QR code (PNG, SVG) and its poster."""
    base = base_url.rstrip("/")
    return {"code": share.code, "url": f"{base}/s/{share.code}", "qr_png_url": f"/s/{share.code}/qr.png",
            "qr_svg_url": f"/s/{share.code}/qr.svg", "poster_png_url": f"/s/{share.code}/poster.png"}


def list_shares(session: Session, *, actor: Principal, target_type: str | None = None, channel: str | None = None,
                sharer: str | None = None, cursor: str | None = None, limit: int | None = None) -> Page[Share]:
    """Shares newest first; a guide sees the shares they made, others the merchant's. `sharer` is
    "staff", "customer" or "none" (counter codes)."""
    stmt = select(Share).where(Share.merchant_id == actor.merchant_id)
    if actor.kind == "staff" and actor.role == Role.GUIDE:
        stmt = stmt.where(Share.sharer_staff_id == actor.staff_id)
    elif actor.kind == "customer":
        stmt = stmt.where(Share.sharer_customer_id == actor.customer_id)
    if target_type:
        stmt = stmt.where(Share.target_type == target_type)
    if channel:
        stmt = stmt.where(Share.channel == channel)
    if sharer == "staff":
        stmt = stmt.where(Share.sharer_staff_id.is_not(None))
    elif sharer == "customer":
        stmt = stmt.where(Share.sharer_customer_id.is_not(None))
    elif sharer == "none":
        stmt = stmt.where(Share.sharer_staff_id.is_(None), Share.sharer_customer_id.is_(None))
    return paginate(session, stmt, Share.id, cursor=cursor, limit=limit)


def campaign_of(share: Share | None, *, target_type: str | None = None, target_id: int | None = None) -> str | None:
    """A share's campaign: its own name, else its target ("product:12")."""
    if share is not None:
        return share.campaign or f"{share.target_type}:{share.target_id}"
    if target_type:
        return f"{target_type}:{target_id or 0}"
    return None


# ---------------------------------------------------------------- touches


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


def valid_visitor_id(value: str | None) -> str | None:
    """A visitor id from a cookie or header when it looks like one we issued, else None."""
    return value if isinstance(value, str) and VISITOR_RE.match(value) else None


def record_touch(session: Session, *, merchant_id: int, channel: str, customer_id: int | None = None,
                 visitor_id: str | None = None, share_code: str | None = None, sharer_staff_id: int | None = None,
                 sharer_customer_id: int | None = None, target_type: str | None = None, target_id: int | None = None,
                 campaign: str | None = None, at: dt.datetime | None = None) -> Touch:
    """Write one touch. A known share code fills the sharer, target and campaign not given; a known customer
    gets the fission edge (first shared touch) and the binding rules (`ownership.apply_touch`) at once."""
    share = share_by_code(session, merchant_id=merchant_id, code=share_code) if share_code else None
    return _record_touch(session, merchant_id=merchant_id, channel=channel, share=share, customer_id=customer_id,
                         visitor_id=visitor_id, sharer_staff_id=sharer_staff_id, sharer_customer_id=sharer_customer_id,
                         target_type=target_type, target_id=target_id, campaign=campaign, at=at)


def _record_touch(session: Session, *, merchant_id: int, channel: str, share: Share | None, customer_id: int | None,
                  visitor_id: str | None, sharer_staff_id: int | None, sharer_customer_id: int | None,
                  target_type: str | None, target_id: int | None, campaign: str | None,
                  at: dt.datetime | None) -> Touch:
    _check_channel(channel)
    if share is not None:
        if sharer_staff_id is None and sharer_customer_id is None:
            sharer_staff_id, sharer_customer_id = share.sharer_staff_id, share.sharer_customer_id
        target_type = target_type or share.target_type
        target_id = share.target_id if target_id is None else target_id
        campaign = campaign or campaign_of(share)
    elif campaign is None:
        campaign = campaign_of(None, target_type=target_type, target_id=target_id)
    touch = Touch(merchant_id=merchant_id, channel=channel, share_id=share.id if share else None,
                  share_code=share.code if share else None, sharer_staff_id=sharer_staff_id,
                  sharer_customer_id=sharer_customer_id, target_type=target_type, target_id=target_id,
                  campaign=(campaign or None) and campaign[:60], visitor_id=valid_visitor_id(visitor_id),
                  customer_id=customer_id, at=at or clock.now())
    session.add(touch)
    session.flush()
    if customer_id is not None:
        _known_customer_touch(session, touch)
    return touch


def _known_customer_touch(session: Session, touch: Touch) -> None:
    assert touch.customer_id is not None
    _note_fission(session, touch)
    ownership.apply_touch(session, merchant_id=touch.merchant_id, customer_id=touch.customer_id, touch_id=touch.id,
                          channel=touch.channel, sharer_staff_id=touch.sharer_staff_id,
                          sharer_customer_id=touch.sharer_customer_id, at=touch.at)


def _note_fission(session: Session, touch: Touch) -> None:
    """Keep the customer's fission edge on their earliest touch that has a sharer (not themself)."""
    if touch.sharer_staff_id is None and touch.sharer_customer_id is None:
        return
    if touch.sharer_customer_id is not None and touch.sharer_customer_id == touch.customer_id:
        return
    values = {"merchant_id": touch.merchant_id, "customer_id": touch.customer_id,
              "by_customer_id": touch.sharer_customer_id,
              "by_staff_id": touch.sharer_staff_id if touch.sharer_customer_id is None else None,
              "touch_id": touch.id, "share_id": touch.share_id, "campaign": touch.campaign, "at": touch.at}
    table = FissionEdge.__table__
    insert_ = upsert_insert(session)
    inserted = execute_core(
        session, insert_(table).values(values).on_conflict_do_nothing(index_elements=["merchant_id", "customer_id"])
        .returning(table.c.id)).first()
    if inserted is None:
        # An earlier touch found later (a visitor's anonymous touches stitched at sign-in) moves the edge.
        session.connection().execute(
            update(table).where(table.c.merchant_id == touch.merchant_id, table.c.customer_id == touch.customer_id,
                                table.c.at > touch.at).values(values))


def last_touch(session: Session, *, merchant_id: int, customer_id: int | None = None, visitor_id: str | None = None,
               before: dt.datetime | None = None) -> Touch | None:
    """The latest touch of a customer (else of a visitor), at or before `before` when given."""
    if customer_id is not None:
        by, who = "customer_id", customer_id
    elif valid_visitor_id(visitor_id):
        by, who = "visitor_id", visitor_id
    else:
        return None
    return session.scalars(_last_touch(by, before is not None),
                           {"merchant_id": merchant_id, "who": who, "before": before}).first()


@functools.cache
def _last_touch(by: str, before: bool) -> Any:
    # Built once per shape (every order and payment asks): the values as parameters.
    stmt = select(Touch).where(Touch.merchant_id == bindparam("merchant_id"), getattr(Touch, by) == bindparam("who"))
    if before:
        stmt = stmt.where(Touch.at <= bindparam("before"))
    return stmt.order_by(Touch.at.desc(), Touch.id.desc()).limit(1)


def touches_of_share(session: Session, *, merchant_id: int, share_id: int, limit: int = 50) -> list[Touch]:
    """A share's latest visits, newest first."""
    return list(session.scalars(select(Touch).where(Touch.merchant_id == merchant_id, Touch.share_id == share_id)
                                .order_by(Touch.at.desc(), Touch.id.desc()).limit(limit)))


def touches_of(session: Session, *, merchant_id: int, customer_id: int, limit: int = 100) -> list[Touch]:
    """A customer's touches, oldest first."""
    return list(session.scalars(select(Touch).where(Touch.merchant_id == merchant_id, Touch.customer_id == customer_id)
                                .order_by(Touch.at, Touch.id).limit(limit)))


def stitch_visitor(session: Session, *, merchant_id: int, customer_id: int, visitor_id: str | None) -> int:
    """A visitor signed in as `customer_id`: their anonymous touches and funnel events get the customer,
    and the touches go through the fission and binding rules in time order. Returns the touches stitched."""
    visitor_id = valid_visitor_id(visitor_id)
    if visitor_id is None:
        return 0
    touches = list(session.scalars(
        select(Touch).where(Touch.merchant_id == merchant_id, Touch.visitor_id == visitor_id,
                            Touch.customer_id.is_(None)).order_by(Touch.at, Touch.id).with_for_update()))
    for touch in touches:
        touch.customer_id = customer_id
    session.flush()
    for touch in touches:
        _known_customer_touch(session, touch)
    session.execute(update(FunnelEvent).where(FunnelEvent.merchant_id == merchant_id,
                                              FunnelEvent.visitor_id == visitor_id,
                                              FunnelEvent.customer_id.is_(None)).values(customer_id=customer_id))
    return len(touches)


def open_share(session: Session, *, share: Share, channel: str | None, visitor_id: str | None,
               customer_id_for: Callable[[Share, str], int | None] | None = None) -> tuple[Touch, str]:
    """Someone opened `/s/{code}` of `share`: record the touch (channel from `?ch=` when it is one of CHANNELS,
    else the share's) and answer the touch and the H5 path to send them to."""
    merchant = merchants.get_merchant(session, share.merchant_id)
    customer_id = customer_id_for(share, merchant.slug) if customer_id_for else None
    touch = _record_touch(session, merchant_id=share.merchant_id, share=share, customer_id=customer_id,
                          channel=channel if channel in CHANNELS else share.channel, visitor_id=visitor_id,
                          sharer_staff_id=None, sharer_customer_id=None, target_type=None, target_id=None,
                          campaign=None, at=None)
    try:
        describe_target(session, merchant_id=share.merchant_id, target_type=share.target_type,
                        target_id=share.target_id)
        path = target_url(share.target_type, share.target_id, slug=merchant.slug)
    except AppError:
        # The product went off sale (or its domain is gone): the visit still counts, and lands in the shop.
        path = f"/shop/{merchant.slug}/"
    return touch, path


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """Two customers were merged: the source's touches, funnel rows and fission edges become the target's
    (the earlier edge wins when both have one)."""
    for model, column in ((Touch, Touch.customer_id), (Touch, Touch.sharer_customer_id),
                          (Share, Share.sharer_customer_id), (FunnelEvent, FunnelEvent.customer_id),
                          (FissionEdge, FissionEdge.by_customer_id)):
        session.execute(update(model).where(model.merchant_id == merchant_id, column == source_id)
                        .values({column.key: target_id}))
    edges = {e.customer_id: e for e in session.scalars(select(FissionEdge).where(
        FissionEdge.merchant_id == merchant_id, FissionEdge.customer_id.in_([source_id, target_id])))}
    source, target = edges.get(source_id), edges.get(target_id)
    if source is not None:
        if target is None or source.at < target.at:
            if target is not None:
                session.delete(target)
                session.flush()
            source.customer_id = target_id
        else:
            session.delete(source)
    session.flush()
    # A customer never brings themself.
    session.execute(delete(FissionEdge).where(FissionEdge.merchant_id == merchant_id,
                                              FissionEdge.customer_id == target_id,
                                              FissionEdge.by_customer_id == target_id))

