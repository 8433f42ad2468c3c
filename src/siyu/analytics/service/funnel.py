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

Brand-wide and per-store figures of a merchant whose aggregates are built come from `service.people`'s
counts (a SUM over a few thousand rows a day); a guide's view, a channel or a campaign walk the period's
funnel events and orders (the slow path, like a merchant not built yet): both give the same numbers."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy.orm import Session

from siyu.analytics.service import aggregates, people
from siyu.analytics.service.common import (
    GROUPS,
    Filters,
    bps,
    channel_matches,
    event_channel_group,
    local_day,
    order_facts,
)
from siyu.analytics.service.gmv import campaign_share_ids, customer_scope
from siyu.attribution.service import analytics_reads as attribution
from siyu.core.auth import Principal, Role
from siyu.orders import service as orders
from siyu.orders.service import PaidOrderFact

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


def _from_counts(session: Session, *, actor: Principal, filters: Filters) -> bool:
    """Whether the counts of `service.people` answer: built, brand-wide (or one store), no guide, channel
    or campaign."""
    return (filters.channel is None and filters.campaign is None and filters.guide_id is None
            and (actor.kind == "system" or actor.role == Role.BRAND_ADMIN)
            and aggregates.is_built(session, merchant_id=actor.merchant_id))


def _walked_cells(session: Session, *, actor: Principal, filters: Filters) -> Counter[tuple[str, str, int]]:
    """{(step, group, store): people} walked from the period's events and orders, day by day."""
    scope = customer_scope(session, actor=actor, filters=filters)
    shares = campaign_share_ids(session, merchant_id=actor.merchant_id, campaign=filters.campaign)
    events: dict[dt.date, list[tuple[str, int | None, str | None, str | None]]] = {}
    for day, kind, customer_id, visitor_id, channel, share_id in attribution.funnel_event_rows(
            session, merchant_id=actor.merchant_id, start=filters.start, end=filters.end, ordered=True):
        if scope is not None and customer_id not in scope:
            continue
        if shares is not None and share_id not in shares:
            continue
        if not channel_matches(filters.channel, channel, event_channel_group(channel)):
            continue
        events.setdefault(day, []).append((kind, customer_id, visitor_id, channel))
    facts: dict[dt.date, list[PaidOrderFact]] = {}
    # a store narrows to the store's customers, as for the events (not to the orders placed in the store)
    for f in order_facts(session, actor=actor, filters=dataclasses.replace(filters, store_id=None)):
        if scope is None or f.customer_id in scope:
            facts.setdefault(local_day(f.paid_at), []).append(f)
    first: dict[tuple[str, int], str] = {}  # (person, step) -> group of their first day in the period
    for day in sorted(set(events) | set(facts)):
        for person, steps in people.day_people(events.get(day, ()), facts.get(day, ())).steps.items():
            for step, grp in steps.items():
                if step <= people.PAY:
                    first.setdefault((person, step), grp)
    payers = {int(p[1:]) for p, step in first if step == people.PAY and p.startswith("c")}
    # repurchase: payers with two or more paid goods orders by the period's end (whole history)
    if aggregates.usable(session, merchant_id=actor.merchant_id, until=filters.until):
        totals = aggregates.customer_totals(session, merchant_id=actor.merchant_id, kept=False)
    else:
        totals = [(cid, n) for cid, _first, _last, n, _kept in orders.customer_order_totals(
            session, merchant_id=actor.merchant_id, until=filters.until, kept_only=False)]
    again = {cid for cid, n in totals if n >= 2 and cid in payers}
    stores = people.stores_of(session, merchant_id=actor.merchant_id, people={p for p, _s in first})
    cells: Counter[tuple[str, str, int]] = Counter()
    for (person, step), grp in first.items():
        store = stores.get(person, 0)
        cells[(people.STEP_NAMES[step], grp, store)] += 1
        if step == people.PAY and person.startswith("c") and int(person[1:]) in again:
            cells[("repurchase", grp, store)] += 1
    return cells


def funnel(session: Session, *, actor: Principal, filters: Filters) -> Funnel:
    if _from_counts(session, actor=actor, filters=filters):
        cells: dict[tuple[str, str, int], int] = people.period_people(
            session, merchant_id=actor.merchant_id, start=filters.start, end=filters.end,
            store_id=filters.store_id).cells
    else:
        cells = _walked_cells(session, actor=actor, filters=filters)
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
