"""Channel mix: sales by traditional store, platform e-commerce, content e-commerce and social (community,
guide, distribution), against the merchant's target mix, with the gap.

Each paid goods order of the period goes to one group by `common.channel_group` (its touch channel, else
its sharer, leader or store pickup). Sales are what was paid and kept (order value minus refunds); the
shares of the groups are split by largest remainder so they sum to exactly 10000 bps; the gap is the
actual share minus the target, in bps."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from siyu.analytics.service import aggregates
from siyu.analytics.service.common import GROUPS, Filters, channel_group, local_day, order_facts
from siyu.analytics.service.settings import get_settings
from siyu.core.auth import Principal
from siyu.core.money import split_largest_remainder


@dataclasses.dataclass(frozen=True)
class MixRow:
    group: str
    orders: int
    gmv_cents: int
    net_cents: int
    share_bps: int | None
    target_bps: int

    @property
    def gap_bps(self) -> int | None:
        return None if self.share_bps is None else self.share_bps - self.target_bps


@dataclasses.dataclass(frozen=True)
class ChannelMix:
    filters: Filters
    rows: list[MixRow]
    # raw touch channel (or "" when none) -> net cents
    by_channel: dict[str, int]
    # day -> group -> net cents
    days: list[tuple[dt.date, dict[str, int]]]

    @property
    def net_cents(self) -> int:
        return sum(r.net_cents for r in self.rows)


def channel_mix(session: Session, *, actor: Principal, filters: Filters) -> ChannelMix:
    target = get_settings(session, merchant_id=actor.merchant_id).target_mix_bps
    orders = dict.fromkeys(GROUPS, 0)
    gmv = dict.fromkeys(GROUPS, 0)
    net = dict.fromkeys(GROUPS, 0)
    by_channel: dict[str, int] = defaultdict(int)
    by_day: dict[dt.date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(GROUPS, 0))
    if aggregates.usable(session, merchant_id=actor.merchant_id):
        # the daily buckets summed per day and channel in the database, instead of every order of the period
        for day, ch, g, n, total, refunded in aggregates.sales_rows(
                session, actor=actor, start=filters.start, end=filters.end, store_id=filters.store_id,
                owner_id=filters.guide_id, channel=filters.channel, campaign=filters.campaign,
                by=("day", "channel", "grp")):
            n, total, refunded = int(n or 0), int(total or 0), int(refunded or 0)
            kept = total - refunded
            orders[g] += n
            gmv[g] += total
            net[g] += kept
            by_channel[ch] += kept
            by_day[day][g] += kept
    else:
        for f in order_facts(session, actor=actor, filters=filters):
            g = channel_group(f)
            kept = f.total_cents - f.refunded_cents
            orders[g] += 1
            gmv[g] += f.total_cents
            net[g] += kept
            by_channel[f.channel or ""] += kept
            by_day[local_day(f.paid_at)][g] += kept
    positive = [max(net[g], 0) for g in GROUPS]
    shares = split_largest_remainder(10_000, positive) if sum(positive) > 0 else [None] * len(GROUPS)
    rows = [MixRow(g, orders[g], gmv[g], net[g], shares[i], target[g]) for i, g in enumerate(GROUPS)]
    days = [(d, dict(by_day[d]) if d in by_day else dict.fromkeys(GROUPS, 0)) for d in filters.day_list()]
    return ChannelMix(filters=filters, rows=rows, by_channel=dict(sorted(by_channel.items())), days=days)


def channel_mix_dict(m: ChannelMix) -> dict[str, Any]:
    return {"filters": m.filters.as_dict(), "net_cents": m.net_cents,
            "groups": [{"group": r.group, "orders": r.orders, "gmv_cents": r.gmv_cents, "net_cents": r.net_cents,
                        "share_bps": r.share_bps, "target_bps": r.target_bps, "gap_bps": r.gap_bps} for r in m.rows],
            "by_channel": [{"channel": k or None, "net_cents": v} for k, v in m.by_channel.items()],
            "days": [{"day": d.isoformat(), **v} for d, v in m.days]}
