"""GMV decomposition: GMV = visitors × conversion × average order value, day by day, and each factor's
contribution to the change between two periods.

Definitions (each for a period or a Shanghai day, in the actor's scope and the filters):
- visitors: distinct people with a funnel event (exposure, view, add to cart, order, pay) plus every
  buyer (a buyer has visited even when no event was recorded, e.g. a store sale), so visitors ≥ buyers;
  a person is their customer id when known, else their visitor cookie;
- buyers: distinct customers with a paid goods order; orders: the paid goods orders;
- narrowed to a store or a guide, visitors and buyers are that store's or guide's customers; to a channel
  (a group or a touch channel) or a campaign, the people whose first day in the period came through it
  (a visitor: that day's first event, else first paid order; a buyer: the day's first pay event, else
  first paid order; see `service.people`); orders and money are the orders placed at the store, for the
  guide's customers, through the channel or campaign (`common.order_facts`);
- GMV: their order value (`total_cents`) at payment, refunds not deducted; `refunded_cents` and
  `net_cents` say what was given back and kept (refunds booked to the day of the sale);
- conversion = buyers / visitors; AOV (客单价) = GMV / buyers. Then GMV = visitors × conversion × AOV
  exactly. With no visitor (or no buyer) conversion and AOV are 0 for the decomposition.

The split of ΔGMV between two periods is the Shapley value of the three factors: each factor's
contribution is its marginal effect averaged over the 6 orders in which the factors can change from
the base period's value to the current one. The three contributions sum to ΔGMV exactly (rational
arithmetic), and are then rounded to cents by largest remainder so they still sum exactly to the
change in cents. Unlike the log (LMDI) split it is defined when a period has zero GMV.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from collections import defaultdict
from fractions import Fraction
from typing import Any

from sqlalchemy.orm import Session

from siyu.analytics.service import aggregates, people
from siyu.analytics.service.common import (
    Filters,
    bps,
    local_day,
    order_facts,
    ratio_half_up,
    whole_merchant,
)
from siyu.core.auth import Principal
from siyu.customers import service as customers

FACTORS = ("visitors", "conversion", "aov")


@dataclasses.dataclass(frozen=True)
class DayFigures:
    day: dt.date
    visitors: int
    buyers: int
    orders: int
    gmv_cents: int
    refunded_cents: int

    @property
    def net_cents(self) -> int:
        return self.gmv_cents - self.refunded_cents

    @property
    def conversion_bps(self) -> int | None:
        return bps(self.buyers, self.visitors)

    @property
    def aov_cents(self) -> int | None:
        return ratio_half_up(self.gmv_cents, self.buyers)


@dataclasses.dataclass(frozen=True)
class Decomposition:
    filters: Filters
    base: Filters
    current: DayFigures  # the period's totals (day = its first day)
    previous: DayFigures
    days: list[DayFigures]
    base_days: list[DayFigures]
    # factor -> contribution to (current GMV - previous GMV) in cents; sums exactly to the change.
    contributions: dict[str, int]

    @property
    def change_cents(self) -> int:
        return self.current.gmv_cents - self.previous.gmv_cents


def customer_scope(session: Session, *, actor: Principal, filters: Filters) -> set[int] | None:
    """The customers whose events count for the actor and filters; None: everyone, anonymous
    visitors included (a brand-wide view not narrowed to a store or guide)."""
    if whole_merchant(actor, store_id=filters.store_id, guide_id=filters.guide_id):
        return None
    return {cid for cid, _o, _s, _c in customers.customer_facts(session, actor=actor, store_id=filters.store_id,
                                                                 owner_id=filters.guide_id)}


def _figures(session: Session, *, actor: Principal, filters: Filters) -> tuple[DayFigures, list[DayFigures]]:
    """The period's totals and days: visitors and buyers from `service.people` (the actor's scope and the
    filters, as the funnel counts them), orders and money from the daily aggregates once built (else the
    paid orders), narrowed like `common.order_facts`."""
    counted = people.in_period(session, actor=actor, filters=filters, gmv=True)
    sales: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0, 0])
    if aggregates.usable(session, merchant_id=actor.merchant_id):
        for day, n, total, refunded in aggregates.sales_rows(
                session, actor=actor, start=filters.start, end=filters.end, store_id=filters.store_id,
                owner_id=filters.guide_id, channel=filters.channel, campaign=filters.campaign, by=("day",)):
            s = sales[day]
            s[0] += int(n)
            s[1] += int(total or 0)
            s[2] += int(refunded or 0)
    else:
        for f in order_facts(session, actor=actor, filters=filters):
            s = sales[local_day(f.paid_at)]
            s[0] += 1
            s[1] += f.total_cents
            s[2] += f.refunded_cents
    days = []
    for d in filters.day_list():
        v, b = counted.days.get(d, (0, 0))
        n, total, refunded = sales.get(d, (0, 0, 0))
        days.append(DayFigures(d, v, b, n, total, refunded))
    total = DayFigures(filters.start, counted.total("visitor"), counted.total("buyer"), sum(x.orders for x in days),
                       sum(x.gmv_cents for x in days), sum(x.refunded_cents for x in days))
    return total, days


def factors_of(d: DayFigures) -> tuple[Fraction, Fraction, Fraction]:
    """(visitors, conversion, AOV) as exact fractions whose product is the GMV. Narrowed to a channel, a
    campaign or a store, people are placed by the touch of their first day in the period (or their own
    store) and orders by their own, so a period may have GMV without a buyer placed in it, or more buyers
    than visitors: the factors then count at least one buyer and at least the buyers as visitors, so their
    product is still the GMV (the figures shown are not changed)."""
    buyers = max(d.buyers, 1) if d.gmv_cents else d.buyers
    visitors = max(d.visitors, buyers)
    v = Fraction(visitors)
    c = Fraction(buyers, visitors) if visitors else Fraction(0)
    a = Fraction(d.gmv_cents, buyers) if buyers else Fraction(0)
    return v, c, a


def shapley_split(base: tuple[Fraction, ...], current: tuple[Fraction, ...]) -> list[Fraction]:
    """Each factor's Shapley contribution to prod(current) - prod(base): its marginal effect averaged over
    every order of switching the factors from base to current. Sums exactly to the change."""
    n = len(base)
    totals = [Fraction(0)] * n
    orders = list(itertools.permutations(range(n)))
    for order in orders:
        values = list(base)
        before = math.prod(values)
        for i in order:
            values[i] = current[i]
            after = math.prod(values)
            totals[i] += after - before
            before = after
    return [t / len(orders) for t in totals]


def round_to_cents(parts: list[Fraction], total: int) -> list[int]:
    """Round exact parts (summing to the integer `total`) to integers that sum to `total`: floors, then
    the units left over to the largest fractional remainders (ties to the earlier part)."""
    floors = [math.floor(p) for p in parts]
    left = total - sum(floors)
    order = sorted(range(len(parts)), key=lambda i: (-(parts[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def decompose(session: Session, *, actor: Principal, filters: Filters, base: Filters | None = None) -> Decomposition:
    """The period's daily figures and the Shapley split of its GMV change against `base` (default: the
    period of the same length just before)."""
    base = base or filters.previous()
    current, days = _figures(session, actor=actor, filters=filters)
    previous, base_days = _figures(session, actor=actor, filters=base)
    exact = shapley_split(factors_of(previous), factors_of(current))
    cents = round_to_cents(exact, current.gmv_cents - previous.gmv_cents)
    return Decomposition(filters=filters, base=base, current=current, previous=previous, days=days,
                         base_days=base_days, contributions=dict(zip(FACTORS, cents, strict=True)))


def day_dict(d: DayFigures) -> dict[str, Any]:
    return {"day": d.day.isoformat(), "visitors": d.visitors, "buyers": d.buyers, "orders": d.orders,
            "gmv_cents": d.gmv_cents, "refunded_cents": d.refunded_cents, "net_cents": d.net_cents,
            "conversion_bps": d.conversion_bps, "aov_cents": d.aov_cents}


def decomposition_dict(r: Decomposition) -> dict[str, Any]:
    def totals(d: DayFigures, f: Filters) -> dict[str, Any]:
        out = day_dict(d)
        out.pop("day")
        return {"start": f.start.isoformat(), "end": f.end.isoformat(), **out}

    return {"filters": r.filters.as_dict(), "current": totals(r.current, r.filters),
            "previous": totals(r.previous, r.base), "change_cents": r.change_cents,
            "contributions_cents": r.contributions, "method": "shapley",
            "days": [day_dict(d) for d in r.days]}
