"""Guide leaderboard: per guide in the caller's scope, the customers they own, the new customers of the
period among them, the sales attributed to them, their customers' repurchase rate, and tasks done.

- customers owned: live customers whose guide they are now; new: those created in the period;
- attributed sales: paid goods orders of the period whose attribution names the guide (`guide_id`),
  else whose customer they owned when it was placed (`owner_id`), net of refunds;
- repurchase rate: of their owned customers with a purchase (paid, not wholly refunded) by the end of the
  period, the share with two or more (bps);
- tasks done: None until a guide-tasks domain exists (shown as n/a, not as 0)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from siyu.analytics.service import aggregates
from siyu.analytics.service.common import Filters, bps, channel_group, channel_matches, order_facts
from siyu.core.auth import Principal, Role, system_principal
from siyu.customers import service as customers
from siyu.merchants import service as merchants
from siyu.orders import service as orders_service


@dataclasses.dataclass(frozen=True)
class GuideRow:
    guide_id: int
    name: str
    store_id: int | None
    customers_owned: int
    new_customers: int
    orders: int
    attributed_net_cents: int
    buyers: int
    repeat_buyers: int
    tasks_done: int | None = None

    @property
    def repurchase_bps(self) -> int | None:
        return bps(self.repeat_buyers, self.buyers)


def leaderboard(session: Session, *, actor: Principal, filters: Filters) -> list[GuideRow]:
    """Guides ranked by attributed sales (then id). A guide sees only their own row."""
    guides = merchants.list_staff(session, actor=actor, role=Role.GUIDE.value,
                                  store_id=filters.store_id)
    if filters.guide_id is not None:
        guides = [g for g in guides if g.id == filters.guide_id]
    ids = {g.id for g in guides}
    owned: dict[int, set[int]] = defaultdict(set)
    new: dict[int, int] = defaultdict(int)
    owner_of: dict[int, int] = {}
    since, until = filters.since, filters.until
    for cid, owner_id, _store, created_at in customers.customer_facts(session, actor=system_principal(actor.merchant_id)):
        if owner_id in ids:
            owned[owner_id].add(cid)
            owner_of[cid] = owner_id
            if since <= created_at < until:
                new[owner_id] += 1
    orders: dict[int, int] = defaultdict(int)
    sales: dict[int, int] = defaultdict(int)
    purchases: dict[int, int] = defaultdict(int)
    narrowing = dataclasses.replace(filters, store_id=None, guide_id=None)
    if aggregates.usable(session, merchant_id=actor.merchant_id, until=until):
        totals: Any = aggregates.customer_totals(session, merchant_id=actor.merchant_id)
    else:
        totals = ((cid, n) for cid, _first, _last, n, _kept in orders_service.customer_order_totals(
            session, merchant_id=actor.merchant_id, until=until))
    for cid, n in totals:
        if cid in owner_of:
            purchases[cid] = n
    if aggregates.usable(session, merchant_id=actor.merchant_id):
        for _day, _store, owner_id, guide_id, _ch, _g, _c, n, total, refunded in aggregates.sales_rows(
                session, actor=actor, start=filters.start, end=filters.end, store_id=filters.store_id,
                channel=narrowing.channel, campaign=narrowing.campaign, scope=False):
            guide = guide_id or owner_id
            if guide in ids:
                orders[guide] += n
                sales[guide] += total - refunded
        return _ranked(guides, owned, new, orders, sales, purchases)
    for f in order_facts(session, actor=system_principal(actor.merchant_id), filters=None, since=since, until=until,
                         period=False):
        kept = f.total_cents - f.refunded_cents
        if not channel_matches(narrowing.channel, f.channel, channel_group(f)):
            continue
        if narrowing.campaign is not None and f.campaign != narrowing.campaign:
            continue
        if filters.store_id is not None and f.store_id != filters.store_id:
            continue
        guide = f.guide_id or f.owner_id
        if guide in ids:
            orders[guide] += 1
            sales[guide] += kept
    return _ranked(guides, owned, new, orders, sales, purchases)


def _ranked(guides: list[Any], owned: dict[int, set[int]], new: dict[int, int], orders: dict[int, int],
            sales: dict[int, int], purchases: dict[int, int]) -> list[GuideRow]:
    rows = []
    for g in guides:
        buyers = [c for c in owned[g.id] if purchases.get(c, 0) >= 1]
        rows.append(GuideRow(g.id, g.name, g.store_id, len(owned[g.id]), new[g.id], orders[g.id], sales[g.id],
                             len(buyers), sum(1 for c in buyers if purchases[c] >= 2)))
    rows.sort(key=lambda r: (-r.attributed_net_cents, r.guide_id))
    return rows


def leaderboard_dict(rows: list[GuideRow], filters: Filters) -> dict[str, Any]:
    return {"filters": filters.as_dict(),
            "guides": [{"rank": i + 1, "guide_id": r.guide_id, "name": r.name, "store_id": r.store_id,
                        "customers_owned": r.customers_owned, "new_customers": r.new_customers, "orders": r.orders,
                        "attributed_net_cents": r.attributed_net_cents, "buyers": r.buyers,
                        "repeat_buyers": r.repeat_buyers, "repurchase_bps": r.repurchase_bps,
                        "tasks_done": r.tasks_done} for i, r in enumerate(rows)]}
