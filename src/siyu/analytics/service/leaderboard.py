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
from siyu.analytics.service.common import (
    Filters,
    bps,
    channel_group,
    channel_matches,
    order_facts,
    whole_merchant,
)
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
    """Guides ranked by attributed sales (then id). A guide sees only their own row. Owned and new
    customers are counted per owner in the database; once the merchant's aggregates are built, the sales
    and the repurchase come from them, grouped in the database too (a few rows per guide into Python)."""
    guides = merchants.list_staff(session, actor=actor, role=Role.GUIDE.value,
                                  store_id=filters.store_id)
    if filters.guide_id is not None:
        guides = [g for g in guides if g.id == filters.guide_id]
    ids = sorted(g.id for g in guides)
    m = actor.merchant_id
    counts = customers.owner_counts(session, merchant_id=m, owner_ids=ids, since=filters.since, until=filters.until)
    narrowing = dataclasses.replace(filters, store_id=None, guide_id=None)
    if aggregates.is_built(session, merchant_id=m):
        # every guide of the merchant (most customers): counted by looking each customer's owner up
        everyone = whole_merchant(actor, store_id=filters.store_id, guide_id=filters.guide_id)
        repurchase = aggregates.repurchase_by_owner(
            session, merchant_id=m, owned=customers.owned_select(merchant_id=m, owner_ids=ids), until=filters.until,
            most=everyone)
        sales = aggregates.sales_by_guide(session, merchant_id=m, start=filters.start, end=filters.end,
                                          store_id=filters.store_id, channel=narrowing.channel,
                                          campaign=narrowing.campaign, guide_ids=ids)
    else:
        repurchase = _repurchase_from_orders(session, merchant_id=m, ids=set(ids), until=filters.until)
        sales = _sales_from_orders(session, merchant_id=m, filters=filters, narrowing=narrowing, ids=set(ids))
    rows = [GuideRow(g.id, g.name, g.store_id, *counts.get(g.id, (0, 0)), *sales.get(g.id, (0, 0)),
                     *repurchase.get(g.id, (0, 0))) for g in guides]
    rows.sort(key=lambda r: (-r.attributed_net_cents, r.guide_id))
    return rows


def _repurchase_from_orders(session: Session, *, merchant_id: int, ids: set[int], until: Any
                            ) -> dict[int, tuple[int, int]]:
    """{guide: (owned customers with a kept purchase before `until`, with two or more)} from the orders
    (a merchant whose aggregates are not built: small)."""
    owner_of = {cid: owner_id for cid, owner_id, _store, _created in customers.customer_facts(
        session, actor=system_principal(merchant_id)) if owner_id in ids}
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for cid, _first, _last, n, _kept in orders_service.customer_order_totals(session, merchant_id=merchant_id,
                                                                             until=until):
        owner = owner_of.get(cid)
        if owner is not None and n >= 1:
            out[owner][0] += 1
            out[owner][1] += 1 if n >= 2 else 0
    return {k: (v[0], v[1]) for k, v in out.items()}


def _sales_from_orders(session: Session, *, merchant_id: int, filters: Filters, narrowing: Filters, ids: set[int]
                       ) -> dict[int, tuple[int, int]]:
    """{guide: (orders, net cents)} of the period's paid goods orders attributed to them, from the orders."""
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for f in order_facts(session, actor=system_principal(merchant_id), filters=None, since=filters.since,
                         until=filters.until, period=False):
        if not channel_matches(narrowing.channel, f.channel, channel_group(f)):
            continue
        if narrowing.campaign is not None and f.campaign != narrowing.campaign:
            continue
        if filters.store_id is not None and f.store_id != filters.store_id:
            continue
        guide = f.guide_id or f.owner_id
        if guide in ids:
            out[guide][0] += 1
            out[guide][1] += f.total_cents - f.refunded_cents
    return {k: (v[0], v[1]) for k, v in out.items()}


def leaderboard_dict(rows: list[GuideRow], filters: Filters) -> dict[str, Any]:
    return {"filters": filters.as_dict(),
            "guides": [{"rank": i + 1, "guide_id": r.guide_id, "name": r.name, "store_id": r.store_id,
                        "customers_owned": r.customers_owned, "new_customers": r.new_customers, "orders": r.orders,
                        "attributed_net_cents": r.attributed_net_cents, "buyers": r.buyers,
                        "repeat_buyers": r.repeat_buyers, "repurchase_bps": r.repurchase_bps,
                        "tasks_done": r.tasks_done} for i, r in enumerate(rows)]}
