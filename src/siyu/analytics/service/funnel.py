"""Funnel: exposure → view → add to cart → order → pay → repurchase, people at each step and the
conversion from the step before, overall, by channel group and by store.

A person is a customer (when known) or a visitor cookie. The first four steps count the distinct people
with that funnel event in the period (attribution's funnel events); pay counts the people with a pay
event or a paid goods order in the period (an order paid at the counter has no event), and every
payer counts as having ordered; repurchase counts
the payers of the period who had paid at least two goods orders by its end. A step's conversion is its
people over the previous step's, in bps (None when the previous step is empty). By channel: the channel
group of the event's touch (of the order's attribution for payers without an event); by store: the
customer's store (anonymous visitors have none)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from siyu.analytics.service import aggregates
from siyu.analytics.service.common import (
    GROUPS,
    Filters,
    bps,
    channel_group,
    channel_matches,
    event_channel_group,
    order_facts,
)
from siyu.analytics.service.gmv import campaign_share_ids, customer_scope
from siyu.attribution.service import analytics_reads as attribution
from siyu.core.auth import Principal, system_principal
from siyu.customers import service as customers
from siyu.orders import service as orders

STEPS = ("exposure", "view", "add_to_cart", "order", "pay", "repurchase")


@dataclasses.dataclass(frozen=True)
class FunnelRow:
    key: str  # "all", a channel group, or a store id ("" for none)
    counts: dict[str, int]

    @property
    def conversion_bps(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for i, step in enumerate(STEPS[1:], start=1):
            out[step] = bps(self.counts[step], self.counts[STEPS[i - 1]])
        return out


@dataclasses.dataclass(frozen=True)
class Funnel:
    filters: Filters
    overall: FunnelRow
    by_channel: list[FunnelRow]
    by_store: list[FunnelRow]


def funnel(session: Session, *, actor: Principal, filters: Filters) -> Funnel:
    scope = customer_scope(session, actor=actor, filters=filters)
    shares = campaign_share_ids(session, merchant_id=actor.merchant_id, campaign=filters.campaign)
    # person -> (step -> channel group of the first such event)
    people: dict[str, dict[str, str]] = defaultdict(dict)
    for _day, kind, customer_id, visitor_id, channel, share_id in attribution.funnel_event_rows(
            session, merchant_id=actor.merchant_id, start=filters.start, end=filters.end):
        if scope is not None and customer_id not in scope:
            continue
        if shares is not None and share_id not in shares:
            continue
        group = event_channel_group(channel)
        if not channel_matches(filters.channel, channel, group):
            continue
        key = f"c{customer_id}" if customer_id is not None else f"v{visitor_id}"
        people[key].setdefault(kind, group)
    payers: dict[int, str] = {}
    for f in order_facts(session, actor=actor, filters=filters):
        payers.setdefault(f.customer_id, channel_group(f))
    for cid, group in payers.items():
        steps = people[f"c{cid}"]
        steps.setdefault("pay", group)
        steps.setdefault("order", steps["pay"])  # whoever paid placed an order
    # repurchase: payers with two or more paid goods orders by the period's end (whole history)
    if aggregates.usable(session, merchant_id=actor.merchant_id, until=filters.until):
        counts = {cid: n for cid, n in aggregates.customer_totals(session, merchant_id=actor.merchant_id, kept=False)
                  if cid in payers}
    else:
        counts = {cid: n for cid, _first, _last, n, _kept in orders.customer_order_totals(
            session, merchant_id=actor.merchant_id, until=filters.until, kept_only=False) if cid in payers}
    for key, steps in people.items():
        if "pay" in steps and key.startswith("c") and counts.get(int(key[1:]), 0) >= 2:
            steps["repurchase"] = steps["pay"]
    stores: dict[int, int | None] = {}
    ids = {int(k[1:]) for k in people if k.startswith("c")}
    if ids:
        for cid, _owner, store_id, _created in customers.customer_facts(session, actor=system_principal(actor.merchant_id)):
            if cid in ids:
                stores[cid] = store_id

    # one pass over the people: each step counts overall, in its channel group and in the person's store
    overall_c = dict.fromkeys(STEPS, 0)
    group_c = {g: dict.fromkeys(STEPS, 0) for g in GROUPS}
    store_c: dict[int | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STEPS, 0))
    for person, steps in people.items():
        store = stores.get(int(person[1:])) if person.startswith("c") else None
        sc = store_c[store]
        for step, group in steps.items():
            overall_c[step] += 1
            if group in group_c:
                group_c[group][step] += 1
            sc[step] += 1
    overall = FunnelRow("all", overall_c)
    by_channel = [FunnelRow(g, group_c[g]) for g in GROUPS]
    store_keys = sorted({s for s in stores.values() if s is not None})
    by_store = [FunnelRow(str(s), store_c[s] if s in store_c else dict.fromkeys(STEPS, 0)) for s in store_keys]
    by_store.append(FunnelRow("", store_c[None] if None in store_c else dict.fromkeys(STEPS, 0)))
    return Funnel(filters=filters, overall=overall, by_channel=by_channel, by_store=by_store)


def funnel_dict(f: Funnel) -> dict[str, Any]:
    def r(x: FunnelRow) -> dict[str, Any]:
        return {"key": x.key or None, "counts": x.counts, "conversion_bps": x.conversion_bps}

    return {"filters": f.filters.as_dict(), "steps": list(STEPS), "overall": r(f.overall),
            "by_channel": [r(x) for x in f.by_channel], "by_store": [r(x) for x in f.by_store]}
