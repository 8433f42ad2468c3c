"""Cohorts: customers grouped by the Shanghai month of their first purchase (acquisition), with the share
of each cohort that bought again in each later month (repeat-purchase retention), for all channels and
per acquisition channel group.

A purchase is a paid goods order not wholly refunded. A customer's acquisition channel is the channel
group of their first purchase; the channel and campaign filters select cohorts by that first purchase,
the store and guide filters by the customer's current store and guide. Month k of a cohort counts the
members with a purchase in the k-th month after their first month (month 0 is the acquisition month
itself, where everybody bought, so it is not listed). Only months up to the period's end are shown."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from siyu.analytics.service import aggregates
from siyu.analytics.service.common import (
    GROUPS,
    Filters,
    add_months,
    bps,
    channel_group,
    channel_matches,
    local_day,
    month_of,
    months_between,
    whole_merchant,
)
from siyu.analytics.service.rfm import customer_ids_in_scope
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.customers import service as customers
from siyu.orders import service as orders


@dataclasses.dataclass(frozen=True)
class CohortRow:
    month: dt.date
    customers: int
    # retained[k-1]: members who bought in month k after acquisition (k = 1 ..)
    retained: list[int]

    @property
    def retention_bps(self) -> list[int | None]:
        return [bps(n, self.customers) for n in self.retained]


@dataclasses.dataclass(frozen=True)
class Cohorts:
    filters: Filters
    months: list[dt.date]
    rows: list[CohortRow]
    by_channel: dict[str, list[CohortRow]]


def cohorts(session: Session, *, actor: Principal, filters: Filters) -> Cohorts:
    """Cohorts of the months the period touches (start's month to end's month)."""
    if aggregates.is_built(session, merchant_id=actor.merchant_id):
        # the customers in scope as a subquery: counted in the database, not loaded here
        scope_select = None if whole_merchant(actor, store_id=filters.store_id, guide_id=filters.guide_id) else (
            customers.scoped_ids(actor=actor, store_id=filters.store_id, owner_id=filters.guide_id))
        return _from_aggregates(session, actor=actor, filters=filters, scope=scope_select)
    scope = customer_ids_in_scope(session, actor=actor, store_id=filters.store_id, guide_id=filters.guide_id)
    first_month: dict[int, dt.date] = {}
    first_group: dict[int, str] = {}
    first_ok: dict[int, bool] = {}
    for f in orders.first_purchase_facts(session, merchant_id=actor.merchant_id, until=filters.until):
        if scope is not None and f.customer_id not in scope:
            continue
        group = channel_group(f)
        first_month[f.customer_id] = month_of(local_day(f.paid_at))
        first_group[f.customer_id] = group
        first_ok[f.customer_id] = (channel_matches(filters.channel, f.channel, group)
                                   and (filters.campaign is None or f.campaign == filters.campaign))
    bought: dict[int, set[int]] = defaultdict(set)  # customer -> month offsets with a purchase
    for cid, ym in orders.customer_purchase_months(session, merchant_id=actor.merchant_id, until=filters.until):
        start = first_month.get(cid)
        if start is None:
            continue
        offset = months_between(start, dt.date(int(ym[:4]), int(ym[5:7]), 1))
        if offset > 0:
            bought[cid].add(offset)
    first, last = month_of(filters.start), month_of(filters.end)
    months = []
    m = first
    while m <= last:
        months.append(m)
        m = add_months(m, 1)
    members: dict[tuple[dt.date, str], list[int]] = defaultdict(list)
    for cid, month in first_month.items():
        if first <= month <= last and first_ok[cid]:
            members[(month, first_group[cid])].append(cid)

    def row(month: dt.date, cids: list[int]) -> CohortRow:
        horizon = months_between(month, last)
        retained = [sum(1 for c in cids if k in bought.get(c, ())) for k in range(1, horizon + 1)]
        return CohortRow(month, len(cids), retained)

    rows = [row(mo, [c for g in GROUPS for c in members.get((mo, g), [])]) for mo in months]
    by_channel = {g: [row(mo, members.get((mo, g), [])) for mo in months] for g in GROUPS}
    return Cohorts(filters=filters, months=months, rows=rows, by_channel=by_channel)


def _months(filters: Filters) -> list[dt.date]:
    first, last = month_of(filters.start), month_of(filters.end)
    months = []
    m = first
    while m <= last:
        months.append(m)
        m = add_months(m, 1)
    return months


def _from_aggregates(session: Session, *, actor: Principal, filters: Filters, scope: Any) -> Cohorts:
    """The same cohorts from the per-customer rows (acquisition month and channel, months bought again as
    bits), counted in the database (`scope`: None, or a SELECT of the customer ids in scope)."""
    months = _months(filters)
    last = months[-1]
    horizon = months_between(months[0], last)
    cells: dict[tuple[dt.date, str], list[int]] = {}  # (month, group) -> [members, retained k=1..horizon]
    for month, group, n, retained in aggregates.cohort_cells(
            session, merchant_id=actor.merchant_id, first=months[0], last=last, horizon=horizon,
            channel=filters.channel, campaign=filters.campaign, scope=scope,
            until=filters.until if filters.until < clock.now() else None):
        cells[(month, group)] = [n, *retained]

    def row(month: dt.date, groups: tuple[str, ...]) -> CohortRow:
        h = months_between(month, last)
        total = [0] * (h + 1)
        for g in groups:
            cell = cells.get((month, g))
            if cell:
                for k in range(h + 1):
                    total[k] += cell[k]
        return CohortRow(month, total[0], total[1:])

    rows = [row(mo, GROUPS) for mo in months]
    by_channel = {g: [row(mo, (g,)) for mo in months] for g in GROUPS}
    return Cohorts(filters=filters, months=months, rows=rows, by_channel=by_channel)


def cohorts_dict(c: Cohorts) -> dict[str, Any]:
    def rows(items: list[CohortRow]) -> list[dict[str, Any]]:
        return [{"month": r.month.strftime("%Y-%m"), "customers": r.customers, "retained": r.retained,
                 "retention_bps": r.retention_bps} for r in items]

    return {"filters": c.filters.as_dict(), "cohorts": rows(c.rows),
            "by_channel": {g: rows(v) for g, v in c.by_channel.items()}}
