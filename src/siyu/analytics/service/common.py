"""What every analytics view shares: the filters (a period of Shanghai calendar days, a store, a guide,
a channel or channel group, a campaign), the paid-order facts read through the orders service, the
channel groups of the channel mix, and integer rate helpers (basis points, half-up)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import case, func, or_
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, Role
from siyu.core.errors import field_error
from siyu.core.money import div_half_up
from siyu.orders import service as orders
from siyu.orders.service import PaidOrderFact

DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366

# The channel mix's four groups (traditional store, platform e-commerce, content e-commerce, social).
GROUPS = ("store", "platform", "content", "social")
GROUP_LABELS = {"store": "Store", "platform": "Platform e-commerce", "content": "Content e-commerce",
                "social": "Social (community, guide, distribution)"}
# Touch channels (attribution.service.shares.CHANNELS) to groups. Unknown or missing channels fall back
# on the order's fulfilment and sharer (see `channel_group`).
CHANNEL_GROUP = {
    "store_qr": "store",
    "search": "platform", "direct": "platform", "ad": "platform", "payment": "platform",
    "live": "content", "oa": "content",
    "guide_qr": "social", "chat": "social", "moments": "social", "community": "social", "wecom": "social",
}


@dataclasses.dataclass(frozen=True)
class Filters:
    """A period of Shanghai days `start`..`end` (both included), optionally one store, one guide (the
    owner of the customers the order was placed for), one channel (a touch channel or a group name) and
    one campaign."""

    start: dt.date
    end: dt.date
    store_id: int | None = None
    guide_id: int | None = None
    channel: str | None = None
    campaign: str | None = None

    @property
    def since(self) -> dt.datetime:
        return clock.local_day_bounds(self.start)[0]

    @property
    def until(self) -> dt.datetime:
        return clock.local_day_bounds(self.end)[1]

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def day_list(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    def previous(self) -> Filters:
        """The period of the same length just before this one, same narrowing."""
        return dataclasses.replace(self, start=self.start - dt.timedelta(days=self.days),
                                   end=self.start - dt.timedelta(days=1))

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "store_id": self.store_id,
                "guide_id": self.guide_id, "channel": self.channel, "campaign": self.campaign}

    def query_string(self) -> str:
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in self.as_dict().items() if v not in (None, "")})


def _parse_day(value: Any, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise field_error(field, "Enter a date as YYYY-MM-DD.") from None


def _parse_id(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise field_error(field, "Must be a whole number.") from None
    if n <= 0 or n > 2**62:
        raise field_error(field, "Must be a whole number.")
    return n


def make_filters(*, start: Any = None, end: Any = None, store_id: Any = None, guide_id: Any = None,
                 channel: Any = None, campaign: Any = None, default_days: int = DEFAULT_DAYS) -> Filters:
    """Filters from loose input (query strings, form fields): the last `default_days` Shanghai days up to
    today unless a period is given. Bad input raises ValidationFailed with the field named."""
    end_day = _parse_day(end, "end") or clock.today_local()
    start_day = _parse_day(start, "start") or end_day - dt.timedelta(days=default_days - 1)
    if start_day > end_day:
        raise field_error("start", "The start must not be after the end.")
    if (end_day - start_day).days + 1 > MAX_DAYS:
        raise field_error("start", "At most {n} days.", n=MAX_DAYS)
    channel = (str(channel).strip()[:20] or None) if channel else None
    if channel is not None and channel not in GROUPS and channel not in CHANNEL_GROUP:
        raise field_error("channel", "Unknown channel: pick a channel group or a touch channel.")
    campaign = (str(campaign).strip()[:60] or None) if campaign else None
    return Filters(start=start_day, end=end_day, store_id=_parse_id(store_id, "store_id"),
                   guide_id=_parse_id(guide_id, "guide_id"), channel=channel, campaign=campaign)


def whole_merchant(actor: Principal, *, store_id: int | None, guide_id: int | None) -> bool:
    """Whether the actor sees every customer of the merchant, not narrowed to a store or a guide."""
    return (actor.kind == "system" or actor.role == Role.BRAND_ADMIN) and store_id is None and guide_id is None


def channel_group(f: PaidOrderFact) -> str:
    """The channel-mix group of one order: its touch channel when it names a group; else a sharer (a
    guide's or a distributor's link) or a leader's pickup makes it social, a store pickup store, and the
    rest (the shop opened directly) platform."""
    group = CHANNEL_GROUP.get(f.channel or "")
    if group is not None:
        return group
    if f.sharer_staff_id or f.sharer_customer_id or f.referrer_customer_id or f.fulfilment_type == "leader":
        return "social"
    if f.fulfilment_type == "pickup":
        return "store"
    return "platform"


def channel_group_sql(c: Any) -> Any:
    """`channel_group` as a SQL CASE over the columns of `orders.paid_goods_select` (`c`: its columns),
    generated from CHANNEL_GROUP and the same fallback rules, so the rebuild in the database and the
    Python path cannot drift apart (tests/analytics/test_rebuild_sql.py checks every case)."""
    sharer = or_(*(func.coalesce(col, 0) != 0 for col in (c.sharer_staff_id, c.sharer_customer_id,
                                                          c.referrer_customer_id)))
    fallback = case((or_(sharer, c.fulfilment_type == "leader"), "social"), (c.fulfilment_type == "pickup", "store"),
                    else_="platform")
    return case(CHANNEL_GROUP, value=c.channel, else_=fallback)


def channel_key(channel: str | None) -> str:
    """A touch channel as the aggregates keep it: a known one (CHANNEL_GROUP), else ""."""
    return channel if channel in CHANNEL_GROUP else ""


def event_channel_group(channel: str | None) -> str:
    """The group of a funnel event's channel (no fulfilment known yet: unknown is platform)."""
    return CHANNEL_GROUP.get(channel or "", "platform")


def channel_matches(wanted: str | None, channel: str | None, group: str) -> bool:
    if wanted is None:
        return True
    if wanted in GROUPS:
        return group == wanted
    return channel == wanted


def order_facts(session: Session, *, actor: Principal, filters: Filters | None,
                since: dt.datetime | None = None, until: dt.datetime | None = None,
                period: bool = True) -> Iterator[PaidOrderFact]:
    """Paid goods orders in the actor's scope that pass the filters' store, guide, channel and campaign,
    paid in the filters' period (or in [since, until) when `period` is False)."""
    if period and filters is not None:
        since, until = filters.since, filters.until
    store_id = filters.store_id if filters else None
    guide_id = filters.guide_id if filters else None
    for f in orders.paid_order_facts(session, merchant_id=actor.merchant_id, since=since, until=until, actor=actor,
                                     store_id=store_id, owner_id=guide_id):
        if filters is not None:
            if filters.channel is not None and not channel_matches(filters.channel, f.channel, channel_group(f)):
                continue
            if filters.campaign is not None and f.campaign != filters.campaign:
                continue
        yield f


def net_cents(f: PaidOrderFact) -> int:
    return f.total_cents - f.refunded_cents


def local_day(at: dt.datetime) -> dt.date:
    return at.astimezone(clock.SHANGHAI).date()


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, n: int) -> dt.date:
    y, m = divmod(month.month - 1 + n, 12)
    return dt.date(month.year + y, m + 1, 1)


def months_between(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def bps(part: int, whole: int) -> int | None:
    """part / whole in basis points, half-up; None when whole is 0 (a rate of nothing is not 0%)."""
    return div_half_up(part * 10_000, whole) if whole else None


def ratio_half_up(part: int, whole: int) -> int | None:
    return div_half_up(part, whole) if whole else None


def is_guide(actor: Principal) -> bool:
    return actor.role == Role.GUIDE
