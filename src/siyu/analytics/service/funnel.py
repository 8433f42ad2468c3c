"""Funnel: exposure → view → add to cart → order → pay → repurchase, people at each step and the
conversion from the step before, overall, by channel group and by store.

A person is a customer (when known) or a visitor cookie. The first four steps count the distinct people
with that funnel event in the period (attribution's funnel events); pay counts the people with a pay
event or a paid goods order in the period (an order paid at the counter has no event), and every
payer counts as having ordered; repurchase counts the payers of the period who had paid at least two
goods orders by its end. A step's conversion is its people over the previous step's, in bps (None when
the previous step is empty). A person is in a step's channel group and store as on their first day with
the step in the period: the channel group of that day's first such event (pay: of the first pay event,
else of the first paid order's attribution; order: of the first order event, else the pay's; repurchase:
the pay's); the customer's store (anonymous visitors have none) as of when that day was counted
(`service.people`: the daily job counts yesterday; today is read as it is now).

Narrowed to a store, a guide (their customers), a channel (a group or a touch channel) or a campaign, a
person counts when their first day with the step in the period has it: the customer's store or owner, the
touch of that day's first such event (as above; a campaign: of the event's share or of the order).

A merchant whose aggregates are built is read from `service.people`'s counted days (a SUM over the
counts, or over the per-person rows along an index for a guide, a touch channel or a campaign); else the
period's events and orders are walked: both give the same numbers."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.orm import Session

from siyu.analytics.service import people
from siyu.analytics.service.common import GROUPS, Filters, bps
from siyu.core.auth import Principal

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
    cells = people.in_period(session, actor=actor, filters=filters).cells
    overall_c = dict.fromkeys(STEPS, 0)
    group_c = {g: dict.fromkeys(STEPS, 0) for g in GROUPS}
    store_c: dict[int, dict[str, int]] = {}
    for (step, grp, store), n in cells.items():
        if step not in overall_c or not n:
            continue
        overall_c[step] += n
        if grp in group_c:
            group_c[grp][step] += n
        store_c.setdefault(store, dict.fromkeys(STEPS, 0))[step] += n
    overall = FunnelRow("all", overall_c)
    by_channel = [FunnelRow(g, group_c[g]) for g in GROUPS]
    by_store = [FunnelRow(str(s), store_c[s]) for s in sorted(k for k in store_c if k)]
    by_store.append(FunnelRow("", store_c.get(0, dict.fromkeys(STEPS, 0))))
    return Funnel(filters=filters, overall=overall, by_channel=by_channel, by_store=by_store)


def funnel_dict(f: Funnel) -> dict[str, Any]:
    def r(x: FunnelRow) -> dict[str, Any]:
        return {"key": x.key or None, "counts": x.counts, "conversion_bps": x.conversion_bps}

    return {"filters": f.filters.as_dict(), "steps": list(STEPS), "overall": r(f.overall),
            "by_channel": [r(x) for x in f.by_channel], "by_store": [r(x) for x in f.by_store]}
