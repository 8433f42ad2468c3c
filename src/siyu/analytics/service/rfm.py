"""RFM: recency, frequency and monetary scores (1–5) per customer, the classic segments, and segments
saved as customer filters that guides and campaigns target (listed and exported as CSV).

Per customer, as of the end of the period (a Shanghai day), from their paid goods orders that were
not wholly refunded: recency = days from the day of the last purchase to that day, frequency = those
orders, monetary = what was paid and kept (order value minus refunds). Customers without such an
order are not scored.

Scores: "quintiles" cut the merchant's own distribution at the 20/40/60/80th percentile (the value at
rank ceil(k·n/5)); a value scores 1 + the number of cut points it is strictly above, so ties share the
lower score (most customers with one order score F=1). Recency is scored the same way on its negation
(more recent, higher). "thresholds": the merchant's four ascending cut points per measure: F and M
score 1 + the cut points reached (≥), R scores 5 − the cut points exceeded (recency days > cut).

Segments, first rule that matches, FM = round-half-up((F + M) / 2):
champions R≥4, FM≥4 · new R≥4 with one order · loyal R≥3, FM≥3 · potential R≥3 ·
can't lose R=1, FM≥4 · at risk R≤2, FM≥3 · hibernating R=2 · lost (the rest).
The trend compares each segment's count with the same computation as of the day before the period.

How it is computed. As of today (the period ends today or later), once the merchant's aggregates are
built, the whole merchant is scored in SQL over `analytics_customer_stats` (one row per customer), or with
a channel or a campaign filter over that dimension's rows of `analytics_customer_dim_stats` (one row per
customer × group / touch channel / campaign): the n-th values that are the quintile cut points (an index
walk per cut), then one GROUP BY over the score expressions gives each segment's count and value and the
score distributions; customers are read one page at a time (by id). A store's or a guide's customers (a
subquery on the customers) have their rows read once and are scored here. The trend reads the nightly
snapshot of the day before the period (`analytics_rfm_snapshots`, job `analytics.rfm_snapshots`) for the
scopes it holds (merchant, store, owner, store × owner; and, for the whole merchant, each dimension: a
channel group, touch channel or campaign, `dim`, scored within it); without a dimension's snapshot it is
computed from that dimension's rows, re-reading the orders before that day of the customers who bought in
it since. A period ending before today is read from the snapshot of its last day (cut points, counts,
values and distributions as the job scored them), its page of customers scored from their orders (of the
dimension) before that day's end. Everything else — a channel and a campaign together, a store's or a
guide's customers in one channel, a day without a snapshot, aggregates not built — groups the orders per
customer and scores them here (correct, and slow for a large merchant). All give the same numbers.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import functools
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, literal_column, select
from sqlalchemy.orm import Session

from siyu.analytics.models import (
    AggregateState,
    CustomerDimStats,
    CustomerPurchaseStats,
    RfmSnapshot,
    SavedSegment,
)
from siyu.analytics.service import aggregates
from siyu.analytics.service.common import Filters, local_day, order_facts, whole_merchant
from siyu.analytics.service.settings import get_settings
from siyu.core import audit, clock
from siyu.core.auth import Principal, Role, get_scoped, scoped, system_principal
from siyu.core.errors import Conflict, NotFound, field_error
from siyu.core.money import cents_to_yuan_str
from siyu.customers import service as customers
from siyu.orders import service as orders

SEGMENTS = ("champions", "loyal", "potential", "new", "at_risk", "cant_lose", "hibernating", "lost")
SEGMENT_LABELS = {"champions": "Champions", "loyal": "Loyal", "potential": "Potential loyalists", "new": "New",
                  "at_risk": "At risk", "cant_lose": "Can't lose them", "hibernating": "Hibernating", "lost": "Lost"}
# What to do with each segment (shown beside it).
SEGMENT_ACTIONS = {"champions": "Reward them; ask for reviews and referrals.",
                   "loyal": "Offer membership upgrades and new arrivals.",
                   "potential": "Recommend related products; invite to membership.",
                   "new": "Welcome them; help with a second purchase.",
                   "at_risk": "Send a personal message from their guide with an offer.",
                   "cant_lose": "Win them back: call them, give a strong offer.",
                   "hibernating": "Remind them with a limited-time offer.",
                   "lost": "Try one reactivation campaign; otherwise do not spend on them."}
DEFAULT_THRESHOLDS = {"r_days": [30, 90, 180, 365], "f_orders": [2, 3, 5, 10], "m_cents": [10000, 50000, 100000, 500000]}
METHODS = ("quintiles", "thresholds")
# Customers a report carries (one page, by id); the API asks for more page by page.
CUSTOMERS_PAGE = 100
MEMBERS_PAGE = 500
EXPORT_BATCH = 2_000
# A snapshot of a day is computed from the per-customer rows, the orders before its end of the customers who
# bought since grouped in the database. The job (every minute) writes yesterday's snapshot, and fills in one
# missing day of this window per run (newest first): the default 30-day period's trend reads the day 30 days
# ago.
SNAPSHOT_BACKFILL_DAYS = 62
SNAPSHOT_BACKFILL_PER_RUN = 1
_FAR_PAST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_FAR_FUTURE = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class CustomerRfm:
    customer_id: int
    recency_days: int
    frequency: int
    monetary_cents: int
    r: int
    f: int
    m: int
    segment: str


@dataclasses.dataclass(frozen=True)
class SegmentRow:
    segment: str
    customers: int
    value_cents: int
    previous_customers: int

    @property
    def change(self) -> int:
        return self.customers - self.previous_customers


@dataclasses.dataclass(frozen=True)
class RfmReport:
    filters: Filters
    method: str
    cuts: dict[str, list[int]]
    segments: list[SegmentRow]
    # customers scored (those with a kept order)
    scored: int
    # score (1..5) -> customers, per measure
    distribution: dict[str, list[int]]
    # one page of the scored customers, by id (`next_cursor`: the last id when more follow)
    customers: list[CustomerRfm]
    next_cursor: int | None = None
    # where the trend came from: "snapshot" (the nightly table) or "computed"
    trend_source: str = "computed"
    # where the scores came from: "snapshot" (a past period's end day, the nightly table) or "computed"
    source: str = "computed"


@dataclasses.dataclass(frozen=True)
class MemberPage:
    items: list[CustomerRfm]
    next_cursor: int | None
    # members now, all pages
    total: int


def quintile_cuts(values: list[int]) -> list[int]:
    """The four cut points (20/40/60/80th percentile: the value at rank ceil(k·n/5))."""
    s = sorted(values)
    n = len(s)
    if n == 0:
        return []
    return [s[r - 1] for r in _ranks(n)]


def _ranks(n: int) -> list[int]:
    """The 1-based ranks of the four quintile cut points among n sorted values: ceil(k·n/5)."""
    return [-(-k * n // 5) for k in range(1, 5)]


def score_above(value: int, cuts: list[int]) -> int:
    """1 + the number of cut points strictly below `value` (`cuts` ascending, as quintile_cuts gives them)."""
    return 1 + bisect.bisect_left(cuts, value)


def segment_of(r: int, f: int, m: int, frequency: int) -> str:
    fm = (f + m + 1) // 2
    if r >= 4 and fm >= 4:
        return "champions"
    if r >= 4 and frequency == 1:
        return "new"
    if r >= 3 and fm >= 3:
        return "loyal"
    if r >= 3:
        return "potential"
    if r == 1 and fm >= 4:
        return "cant_lose"
    if fm >= 3:
        return "at_risk"
    if r == 2:
        return "hibernating"
    return "lost"


def _thresholds(thresholds: dict[str, list[int]] | None) -> dict[str, list[int]]:
    t = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    return {"r": list(t["r_days"]), "f": list(t["f_orders"]), "m": list(t["m_cents"])}


@dataclasses.dataclass(frozen=True)
class Scoring:
    """One computation's cut points (`cuts`: recency in days, as shown) and the rule that scores a
    customer's (last purchase, orders, cents) with them, in Python (`score`) and in SQL (`sql_scores`)."""

    method: str
    as_of: dt.date
    cuts: dict[str, list[int]]

    def score(self, last: dt.datetime, n: int, cents: int) -> CustomerRfm:
        return self.score_days(0, (self.as_of - local_day(last)).days, n, cents)

    @functools.cached_property
    def _sorted(self) -> tuple[list[int], list[int], list[int]]:
        return sorted(self.cuts["r"]), sorted(self.cuts["f"]), sorted(self.cuts["m"])

    def score_days(self, customer_id: int, days: int, n: int, cents: int) -> CustomerRfm:
        r, f, m = self.scores_of(days, n, cents)
        return CustomerRfm(customer_id, days, n, cents, r, f, m, segment_of(r, f, m, n))

    def scores_of(self, days: int, n: int, cents: int) -> tuple[int, int, int]:
        """R, F and M of (recency days, orders, cents)."""
        rc, fc, mc = self._sorted
        if self.method == "thresholds":
            r = 5 - bisect.bisect_left(rc, days)  # cut points below the days
            f = 1 + bisect.bisect_right(fc, n)  # cut points reached
            m = 1 + bisect.bisect_right(mc, cents)
        else:
            r = 1 + len(rc) - bisect.bisect_right(rc, days)  # -days above -x (days < x): ties score lower
            f, m = 1 + bisect.bisect_left(fc, n), 1 + bisect.bisect_left(mc, cents)
        return r, f, m

    def _day_start(self, offset: int) -> dt.datetime:
        """The UTC start of the Shanghai day `offset` days from as_of (clamped far out for huge cut points)."""
        try:
            day = self.as_of + dt.timedelta(days=offset)
        except OverflowError:
            return _FAR_PAST if offset < 0 else _FAR_FUTURE
        if day.year < 1900:
            return _FAR_PAST
        if day.year >= 9000:
            return _FAR_FUTURE
        return clock.local_day_bounds(day)[0]

    def sql_scores(self, last: Any, n: Any, cents: Any) -> tuple[Any, Any, Any]:
        """R, F and M as SQL expressions of the columns (recency compares the purchase time with the UTC
        start of a Shanghai day, so no date arithmetic in SQL). Each counts the cut points a value passes
        like `score_days`; the conditions are ordered so that each implies the ones before it, so one
        CASE finds the count with the fewest comparisons."""
        c = self.cuts
        if self.method == "thresholds":
            # days > x  <=>  the last purchase is before the start of day as_of - x
            before = sorted((self._day_start(-x) for x in c["r"]), reverse=True)
            r = 5 - _passed([last < b for b in before])
            f = 1 + _passed([n >= x for x in sorted(c["f"])])
            m = 1 + _passed([cents >= x for x in sorted(c["m"])])
        else:
            # days < x  <=>  the last purchase is on day as_of - x + 1 or later
            r = 1 + _passed([last >= b for b in sorted(self._day_start(1 - x) for x in c["r"])])
            f = 1 + _passed([n > x for x in sorted(c["f"])])
            m = 1 + _passed([cents > x for x in sorted(c["m"])])
        return r, f, m


def _passed(conditions: list[Any]) -> Any:
    """How many of `conditions` hold, each implying the ones before it: CASE from the last one down."""
    if not conditions:
        return literal_column("0")
    return case(*[(cond, len(conditions) - i) for i, cond in enumerate(reversed(conditions))], else_=0)


def segment_sql(r: Any, f: Any, m: Any, n: Any) -> Any:
    """`segment_of` as a SQL CASE (FM = round-half-up((F + M) / 2) ≥ 4 is F + M ≥ 7, ≥ 3 is F + M ≥ 5)."""
    fm = f + m
    return case((and_(r >= 4, fm >= 7), "champions"), (and_(r >= 4, n == 1), "new"), (and_(r >= 3, fm >= 5), "loyal"),
                (r >= 3, "potential"), (and_(r == 1, fm >= 7), "cant_lose"), (fm >= 5, "at_risk"), (r == 2, "hibernating"),
                else_="lost")


def customer_ids_in_scope(session: Session, *, actor: Principal, store_id: int | None, guide_id: int | None
                          ) -> set[int] | None:
    """None when the actor sees the whole merchant and nothing narrows it."""
    if whole_merchant(actor, store_id=store_id, guide_id=guide_id):
        return None
    return {cid for cid, _o, _s, _c in customers.customer_facts(session, actor=actor, store_id=store_id,
                                                                 owner_id=guide_id)}


def _aggregates(session: Session, *, actor: Principal, filters: Filters, until: dt.datetime,
                scope: set[int] | None) -> dict[int, tuple[dt.datetime, int, int]]:
    """customer -> (last purchase, orders, net cents) from orders paid before `until`, not wholly refunded,
    over each customer's whole history, kept to the customers in scope. Without a channel or campaign
    filter the database aggregates per customer; with one, the orders are read and filtered here."""
    out: dict[int, tuple[dt.datetime, int, int]] = {}
    if filters.channel is None and filters.campaign is None:
        for cid, _first, last, n, kept in orders.customer_order_totals(session, merchant_id=actor.merchant_id,
                                                                        until=until):
            if scope is None or cid in scope:
                out[cid] = (last, n, kept)
        return out
    narrowing = dataclasses.replace(filters, store_id=None, guide_id=None)
    for f in order_facts(session, actor=system_principal(actor.merchant_id), filters=narrowing, until=until,
                         period=False):
        if scope is not None and f.customer_id not in scope:
            continue
        net = f.total_cents - f.refunded_cents
        if net <= 0:
            continue
        prev = out.get(f.customer_id)
        if prev is None:
            out[f.customer_id] = (f.paid_at, 1, net)
        else:
            out[f.customer_id] = (max(prev[0], f.paid_at), prev[1] + 1, prev[2] + net)
    return out


def _list_scoring(rows: list[tuple[int, int, int, int]], *, as_of: dt.date, method: str,
                  thresholds: dict[str, list[int]] | None) -> Scoring:
    """The cut points of (customer, recency days, orders, cents) rows."""
    if method == "thresholds":
        return Scoring(method, as_of, _thresholds(thresholds))
    neg_r = quintile_cuts([-d for _c, d, _n, _m in rows])
    return Scoring(method, as_of, {"r": [-c for c in neg_r], "f": quintile_cuts([n for _c, _d, n, _m in rows]),
                                   "m": quintile_cuts([m for _c, _d, _n, m in rows])})


def score(aggregates: dict[int, tuple[dt.datetime, int, int]], *, as_of: dt.date, method: str,
          thresholds: dict[str, list[int]]) -> tuple[list[CustomerRfm], dict[str, list[int]]]:
    """Every customer of `aggregates` scored (by id) and the cut points, in Python."""
    rows = [(cid, (as_of - local_day(last)).days, n, cents) for cid, (last, n, cents) in sorted(aggregates.items())]
    scoring = _list_scoring(rows, as_of=as_of, method=method, thresholds=thresholds)
    return [scoring.score_days(cid, days, n, cents) for cid, days, n, cents in rows], scoring.cuts


# ---------------------------------------------------------------- one computation, in SQL or in Python


@dataclasses.dataclass
class _Computation:
    """Scores as of one day: the cut points, each segment's count and value, the score distributions, and
    pages of the scored customers (optionally of one segment), by customer id."""

    scoring: Scoring
    scored: int
    counts: dict[str, int]
    values: dict[str, int]
    distribution: dict[str, list[int]]
    page: Callable[[int | None, int, str | None], list[CustomerRfm]]

    def iter(self, segment: str | None, batch: int = EXPORT_BATCH) -> Iterator[list[CustomerRfm]]:
        after = None
        while True:
            items = self.page(after, batch, segment)
            if items:
                yield items
            if len(items) < batch:
                return
            after = items[-1].customer_id


def _summary(groups: list[tuple[int, int, int, int, int, int]]) -> tuple[int, dict[str, int], dict[str, int],
                                                                      dict[str, list[int]]]:
    """(r, f, m, orders (1, or 2 for more), customers, cents) groups -> scored, counts, values, distribution."""
    counts = {s: 0 for s in SEGMENTS}
    values = {s: 0 for s in SEGMENTS}
    distribution = {k: [0] * 5 for k in ("r", "f", "m")}
    scored = 0
    for r, f, m, n, count, cents in groups:
        seg = segment_of(r, f, m, n)
        counts[seg] += count
        values[seg] += cents
        distribution["r"][r - 1] += count
        distribution["f"][f - 1] += count
        distribution["m"][m - 1] += count
        scored += count
    return scored, counts, values, distribution


def _listed(rows: list[CustomerRfm], scoring: Scoring) -> _Computation:
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for c in rows:
        g = groups.setdefault((c.r, c.f, c.m, 1 if c.frequency == 1 else 2), [0, 0])
        g[0] += 1
        g[1] += c.monetary_cents
    scored, counts, values, distribution = _summary([(*k, v[0], v[1]) for k, v in groups.items()])
    ids = [c.customer_id for c in rows]

    def page(after: int | None, limit: int, segment: str | None) -> list[CustomerRfm]:
        out: list[CustomerRfm] = []
        for c in rows[bisect.bisect_right(ids, after) if after is not None else 0:]:
            if segment is None or c.segment == segment:
                out.append(c)
                if len(out) >= limit:
                    break
        return out

    return _Computation(scoring, scored, counts, values, distribution, page)


def _values_at_ranks(session: Session, column: Any, conds: list[Any], ranks: list[int]) -> list[Any]:
    """The values at the 1-based `ranks` of `column` sorted ascending over the rows of `conds` (conditions
    on the indexed column alone): one walk along its index per rank."""
    got = {rank: session.scalar(select(column).where(*conds).order_by(column).offset(rank - 1).limit(1))
           for rank in sorted(set(ranks))}
    return [got[rank] for rank in ranks]


@dataclasses.dataclass(frozen=True)
class _Source:
    """The per-customer rows a computation in SQL reads: a table with customer_id, last_paid_at, kept_orders
    and kept_cents, and the conditions picking the merchant's rows (and one dimension's)."""

    table: Any
    conds: tuple[Any, ...]


def _source(merchant_id: int, dim: str | None) -> _Source:
    """`analytics_customer_stats` (every kept order), or `analytics_customer_dim_stats` of one dimension
    (`aggregates.dim_of`: the kept orders of one channel or campaign)."""
    if dim is None:
        return _Source(CustomerPurchaseStats, (CustomerPurchaseStats.merchant_id == merchant_id,))
    return _Source(CustomerDimStats, (CustomerDimStats.merchant_id == merchant_id, CustomerDimStats.dim == dim))


def _sql_scoring(session: Session, src: _Source, *, as_of: dt.date, method: str,
                 thresholds: dict[str, list[int]] | None) -> Scoring:
    if method == "thresholds":
        return Scoring(method, as_of, _thresholds(thresholds))
    s = src.table
    conds = [*src.conds, s.kept_orders > 0]
    # frequency: few distinct values, so one pass counting each gives every rank
    hist = list(session.execute(select(s.kept_orders, func.count()).where(*conds).group_by(s.kept_orders)
                                .order_by(s.kept_orders)))
    n = sum(int(c) for _v, c in hist)
    if n == 0:
        return Scoring(method, as_of, {"r": [], "f": [], "m": []})
    ranks = _ranks(n)
    f_cuts, seen, i = [], 0, 0
    for rank in ranks:
        while seen + int(hist[i][1]) < rank:
            seen += int(hist[i][1])
            i += 1
        f_cuts.append(int(hist[i][0]))
    # Kept cents > 0 and a last purchase exactly when an order was kept: the same rows on one index each.
    m_cuts = [int(v) for v in _values_at_ranks(session, s.kept_cents, [*src.conds, s.kept_cents > 0], ranks)]
    lasts = _values_at_ranks(session, s.last_paid_at, [*src.conds, s.last_paid_at.is_not(None)], ranks)
    # recency sorts the other way: the k-th cut of -days is the k-th earliest last purchase
    r_cuts = [(as_of - local_day(last)).days for last in lasts]
    return Scoring(method, as_of, {"r": r_cuts, "f": f_cuts, "m": m_cuts})


def _in_sql(session: Session, *, actor: Principal, store_id: int | None, guide_id: int | None, as_of: dt.date,
            method: str, thresholds: dict[str, list[int]] | None, summary: bool = True,
            dim: str | None = None) -> _Computation:
    """Scores as of `as_of` from the per-customer rows (their whole history as of now; with `dim`, the rows
    of that dimension). For the whole merchant everything stays in SQL; a store's or a guide's customers (a
    subquery on the customers) have their rows read once, looked up by id, and are scored here."""
    src = _source(actor.merchant_id, dim)
    s = src.table
    if not whole_merchant(actor, store_id=store_id, guide_id=guide_id):
        scope = customers.scoped_ids(actor=actor, store_id=store_id, owner_id=guide_id)
        # kept orders tested here, not in SQL, so that no index on them is preferred to the id lookups
        totals = {int(c): (last, int(n), int(k)) for c, last, n, k in session.execute(
            select(s.customer_id, s.last_paid_at, s.kept_orders, s.kept_cents).where(
                *src.conds, s.customer_id.in_(scope))) if n > 0}
        rows, cuts = score(totals, as_of=as_of, method=method, thresholds=thresholds or {})
        return _listed(rows, Scoring(method, as_of, cuts))
    conds: list[Any] = [*src.conds, s.kept_orders > 0]
    scoring = _sql_scoring(session, src, as_of=as_of, method=method, thresholds=thresholds)
    r, f, m = scoring.sql_scores(s.last_paid_at, s.kept_orders, s.kept_cents)
    scored, counts, values, distribution = 0, {x: 0 for x in SEGMENTS}, {x: 0 for x in SEGMENTS}, {
        k: [0] * 5 for k in ("r", "f", "m")}
    if summary:
        # one integer key per (R, F, M, one order or more): a single-column GROUP BY
        key = r * 1000 + f * 100 + m * 10 + case((s.kept_orders == 1, 1), else_=2)
        sub = select(key.label("k"), s.kept_cents.label("cents")).where(*conds).subquery()
        groups = session.execute(select(sub.c.k, func.count(), func.sum(sub.c.cents)).group_by(sub.c.k))
        scored, counts, values, distribution = _summary([
            (int(k) // 1000, int(k) // 100 % 10, int(k) // 10 % 10, int(k) % 10, int(n), int(cents or 0))
            for k, n, cents in groups])

    def page(after: int | None, limit: int, segment: str | None) -> list[CustomerRfm]:
        # a range on the id (also on the first page) makes the (merchant, customer) index the one to walk
        where = [*conds, s.customer_id > (after or 0)]
        cols = select(s.customer_id, s.last_paid_at, s.kept_orders, s.kept_cents)
        if segment is None:
            stmt = cols.where(*where).order_by(s.customer_id).limit(limit)
        else:
            sub = cols.add_columns(r.label("r"), f.label("f"), m.label("m")).where(*where).subquery()
            stmt = (select(sub.c.customer_id, sub.c.last_paid_at, sub.c.kept_orders, sub.c.kept_cents)
                    .where(segment_sql(sub.c.r, sub.c.f, sub.c.m, sub.c.kept_orders) == segment)
                    .order_by(sub.c.customer_id).limit(limit))
        out = []
        for cid, last, n, cents in session.execute(stmt):
            out.append(scoring.score_days(int(cid), (as_of - local_day(last)).days, int(n), int(cents)))
        return out

    return _Computation(scoring, scored, counts, values, distribution, page)


def _compute(session: Session, *, actor: Principal, filters: Filters, until: dt.datetime, as_of: dt.date,
             method: str, thresholds: dict[str, list[int]] | None, summary: bool = True) -> _Computation:
    """Scores as of `as_of` from the orders paid before `until`: in SQL from the per-customer rows when they
    hold exactly that (built, horizon not past; a channel or a campaign: that dimension's rows); else in
    Python from the orders."""
    if filters.channel is None and filters.campaign is None and aggregates.usable(
            session, merchant_id=actor.merchant_id, until=until):
        return _in_sql(session, actor=actor, store_id=filters.store_id, guide_id=filters.guide_id, as_of=as_of,
                       method=method, thresholds=thresholds, summary=summary)
    dim = aggregates.dim_of(filters.channel, filters.campaign)
    if dim is not None and aggregates.dims_usable(session, merchant_id=actor.merchant_id):
        if until >= clock.now():
            return _in_sql(session, actor=actor, store_id=filters.store_id, guide_id=filters.guide_id,
                           as_of=as_of, method=method, thresholds=thresholds, summary=summary, dim=dim)
        # a past horizon (the trend's day before the period): the dimension's rows as of then
        scope = None if whole_merchant(actor, store_id=filters.store_id, guide_id=filters.guide_id) else (
            customers.scoped_ids(actor=actor, store_id=filters.store_id, owner_id=filters.guide_id))
        totals = aggregates.dim_totals_as_of(session, merchant_id=actor.merchant_id, dim=dim, until=until,
                                             scope=scope)
        rows, cuts = score(totals, as_of=as_of, method=method, thresholds=thresholds or {})
        return _listed(rows, Scoring(method, as_of, cuts))
    scope = customer_ids_in_scope(session, actor=actor, store_id=filters.store_id, guide_id=filters.guide_id)
    totals = _aggregates(session, actor=actor, filters=filters, until=until, scope=scope)
    rows, cuts = score(totals, as_of=as_of, method=method, thresholds=thresholds or {})
    return _listed(rows, Scoring(method, as_of, cuts))


def rfm(session: Session, *, actor: Principal, filters: Filters, method: str | None = None,
        customers_after: int | None = None, customers_limit: int = CUSTOMERS_PAGE) -> RfmReport:
    """Scores and segments as of the period's last day, with each segment's count as of the day before
    the period for the trend, and one page of the scored customers (by id, after `customers_after`)."""
    settings = get_settings(session, merchant_id=actor.merchant_id)
    method = method or settings.rfm_method
    if method not in METHODS:
        raise field_error("method", "Unknown RFM method.")
    now = _from_snapshot(session, actor=actor, filters=filters, method=method, thresholds=settings.rfm_thresholds)
    now_source = "computed" if now is None else "snapshot"
    if now is None:
        now = _compute(session, actor=actor, filters=filters, until=filters.until, as_of=filters.end,
                       method=method, thresholds=settings.rfm_thresholds)
    before_day = filters.start - dt.timedelta(days=1)
    before, source = None, "computed"
    dim = aggregates.dim_of(filters.channel, filters.campaign)
    if filters.channel is None and filters.campaign is None and not aggregates.usable(
            session, merchant_id=actor.merchant_id, until=filters.since):
        before = read_snapshot(session, actor=actor, store_id=filters.store_id, guide_id=filters.guide_id,
                               day=before_day, basis=basis_of(method, settings.rfm_thresholds))
    elif dim is not None and filters.since < clock.now():
        # one channel or campaign, for the whole merchant: the dimension's snapshot of that day
        before = read_snapshot(session, actor=actor, store_id=filters.store_id, guide_id=filters.guide_id,
                               day=before_day, basis=basis_of(method, settings.rfm_thresholds), dim=dim)
    source = "snapshot" if before is not None else source
    if before is None:
        before = _compute(session, actor=actor, filters=filters, until=filters.since, as_of=before_day,
                          method=method, thresholds=settings.rfm_thresholds).counts
    limit = max(0, min(customers_limit, 1000))
    page = now.page(customers_after, limit + 1, None) if limit else []
    more = len(page) > limit
    page = page[:limit]
    return RfmReport(filters=filters, method=method, cuts=now.scoring.cuts,
                     segments=[SegmentRow(s, now.counts[s], now.values[s], before[s]) for s in SEGMENTS],
                     scored=now.scored, distribution=now.distribution, customers=page,
                     next_cursor=page[-1].customer_id if more and page else None, trend_source=source,
                     source=now_source)


def rfm_dict(r: RfmReport, *, with_customers: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "filters": r.filters.as_dict(), "method": r.method, "cuts": r.cuts, "scored_customers": r.scored,
        "segments": [{"segment": s.segment, "customers": s.customers, "value_cents": s.value_cents,
                      "previous_customers": s.previous_customers, "change": s.change} for s in r.segments],
        "distribution": r.distribution,
    }
    if with_customers:
        out["customers"] = [dataclasses.asdict(c) for c in r.customers]
        out["customers_next_cursor"] = None if r.next_cursor is None else str(r.next_cursor)
    return out


# ---------------------------------------------------------------- nightly snapshots (the trend)


def basis_of(method: str, thresholds: dict[str, list[int]] | None) -> str:
    """What a snapshot's segments depend on besides the data: the method, and the thresholds in use."""
    if method != "thresholds":
        return method
    t = _thresholds(thresholds)
    return "thresholds:" + "|".join(",".join(str(x) for x in t[k]) for k in ("r", "f", "m"))


def snapshot_scope(actor: Principal, *, store_id: int | None, guide_id: int | None) -> tuple[int, int] | None:
    """The (store, owner) snapshot rows (0: any) that hold exactly the customers the actor sees narrowed to
    a store / guide; None when the scope is not one of them (a manager of several stores)."""
    if actor.kind == "system" or actor.role == Role.BRAND_ADMIN:
        return store_id or 0, guide_id or 0
    if actor.role == Role.GUIDE:
        if guide_id not in (None, actor.subject_id):
            return None
        return store_id or 0, actor.subject_id or 0
    if len(actor.store_ids) != 1 or store_id not in (None, actor.store_ids[0]):
        return None
    return actor.store_ids[0], guide_id or 0


def _dim_scope(actor: Principal, *, store_id: int | None, guide_id: int | None, dim: str) -> tuple[int, int] | None:
    """`snapshot_scope`; with a dimension (`dim` not ""), only the whole merchant's (0, 0): a dimension's
    rows are written for the whole merchant alone."""
    key = snapshot_scope(actor, store_id=store_id, guide_id=guide_id)
    if dim and (key != (0, 0) or not whole_merchant(actor, store_id=store_id, guide_id=guide_id)):
        return None
    return key


def read_snapshot(session: Session, *, actor: Principal, store_id: int | None, guide_id: int | None, day: dt.date,
                  basis: str, dim: str = "") -> dict[str, int] | None:
    """Each segment's customers as of the end of `day` from the snapshot (with `dim`, a dimension's of the
    whole merchant: `aggregates.dim_of`), or None when there is none."""
    key = _dim_scope(actor, store_id=store_id, guide_id=guide_id, dim=dim)
    if key is None:
        return None
    t = RfmSnapshot
    rows = list(session.execute(select(t.store_id, t.owner_id, t.segment, t.customers).where(
        t.merchant_id == actor.merchant_id, t.day == day, t.basis == basis, t.dim == dim,
        ((t.store_id == 0) & (t.owner_id == 0) & (t.segment == "")) | (
            (t.store_id == key[0]) & (t.owner_id == key[1])))))
    if not any(seg == "" for _s, _o, seg, _n in rows):
        return None
    counts = {s: 0 for s in SEGMENTS}
    for st, ow, seg, n in rows:
        if (st, ow) == key and seg in counts:
            counts[seg] = int(n)
    return counts


def _from_snapshot(session: Session, *, actor: Principal, filters: Filters, method: str,
                   thresholds: dict[str, list[int]] | None) -> _Computation | None:
    """A period ending on a past day as the nightly snapshot of that day scored it: cut points, each
    segment's count and value, the distributions; a page of customers is scored here from their orders
    (of the dimension, with a channel or a campaign) before the day's end with those cut points. None when
    there is no such snapshot (or it predates the kept cut points, or the dimension's rows), the scope is
    not one it holds (a dimension: the whole merchant only; not a channel and a campaign together), or the
    merchant's per-customer rows (which say who had bought by then) are not built."""
    narrowed = filters.channel is not None or filters.campaign is not None
    dim = aggregates.dim_of(filters.channel, filters.campaign)
    if ((narrowed and dim is None) or filters.until >= clock.now()
            or not aggregates.is_built(session, merchant_id=actor.merchant_id)
            or (dim is not None and not aggregates.dims_usable(session, merchant_id=actor.merchant_id))):
        return None
    key = _dim_scope(actor, store_id=filters.store_id, guide_id=filters.guide_id, dim=dim or "")
    if key is None:
        return None
    t = RfmSnapshot
    rows = list(session.execute(select(t.store_id, t.owner_id, t.segment, t.customers, t.value_cents, t.scores).where(
        t.merchant_id == actor.merchant_id, t.day == filters.end, t.basis == basis_of(method, thresholds),
        t.dim == (dim or ""), ((t.store_id == 0) & (t.owner_id == 0) & (t.segment == "")) | (
            (t.store_id == key[0]) & (t.owner_id == key[1])))))
    if not any((st, ow, seg) == (0, 0, "") and scores is not None for st, ow, seg, _n, _v, scores in rows):
        return None
    mine = [(seg, int(n), int(v), scores) for st, ow, seg, n, v, scores in rows if (st, ow) == key]
    summary = next((scores for seg, _n, _v, scores in mine if seg == ""), None)
    counts, values = {x: 0 for x in SEGMENTS}, {x: 0 for x in SEGMENTS}
    for seg, n, v, _scores in mine:
        if seg in counts:
            counts[seg], values[seg] = n, v
    if summary is None:  # nobody in the scope was scored
        cuts = _thresholds(thresholds) if method == "thresholds" else {"r": [], "f": [], "m": []}
        distribution = {k: [0] * 5 for k in ("r", "f", "m")}
    else:
        cuts = {k: [int(x) for x in summary["cuts"][k]] for k in ("r", "f", "m")}
        distribution = {k: [int(x) for x in summary["distribution"][k]] for k in ("r", "f", "m")}
    scoring = Scoring(method, filters.end, cuts)
    merchant_id, until = actor.merchant_id, filters.until
    scope = None if whole_merchant(actor, store_id=filters.store_id, guide_id=filters.guide_id) else (
        customers.scoped_ids(actor=actor, store_id=filters.store_id, owner_id=filters.guide_id))

    def page(after: int | None, limit: int, segment: str | None) -> list[CustomerRfm]:
        out: list[CustomerRfm] = []
        batch = limit if segment is None else max(limit, EXPORT_BATCH)
        while len(out) < limit and sum(counts.values()):
            # with a dimension the buyers are a superset (see `buyers_before`): those without an order of
            # it by then are dropped below, and each further batch is twice as large (up to EXPORT_BATCH)
            ids = aggregates.buyers_before(session, merchant_id=merchant_id, until=until, after=after, limit=batch,
                                           scope=scope, dim=dim)
            totals = aggregates.totals_before(session, merchant_id=merchant_id, customer_ids=ids, until=until,
                                              dim=dim)
            for cid in ids:
                if cid not in totals:  # their row is ahead of the orders (a refund being handled)
                    continue
                last, n, cents = totals[cid]
                c = scoring.score_days(cid, (filters.end - local_day(last)).days, n, cents)
                if segment is None or c.segment == segment:
                    out.append(c)
                    if len(out) >= limit:
                        break
            if len(ids) < batch:
                break
            after = ids[-1]
            if dim is not None:
                batch = max(batch, min(2 * batch, EXPORT_BATCH))
        return out

    return _Computation(scoring, sum(counts.values()), counts, values, distribution, page)


def totals_as_of(session: Session, *, merchant_id: int, until: dt.datetime) -> dict[int, tuple[dt.datetime, int, int]]:
    """customer -> (last purchase, orders, net cents) of the kept goods orders paid before `until` (what
    `_aggregates` gives without filters): from the per-customer rows when the merchant's are built
    (`aggregates.dim_totals_as_of` of no dimension), else the orders grouped per customer."""
    if aggregates.is_built(session, merchant_id=merchant_id):
        return aggregates.dim_totals_as_of(session, merchant_id=merchant_id, dim=None, until=until)
    return {cid: (last, n, kept) for cid, _f, last, n, kept in orders.customer_order_totals(
        session, merchant_id=merchant_id, until=until)}


def write_snapshot(session: Session, *, merchant_id: int, day: dt.date) -> int:
    """Write (replace) the merchant's RFM snapshot as of the end of `day`, for both methods (thresholds: the
    merchant's current ones), for the whole merchant and each store, owner and store × owner of its live
    customers; and, once its dimension rows are built, for the whole merchant within each dimension (a
    channel group, touch channel or campaign: `dim`), scored as RFM narrowed to it scores. Returns the rows
    written."""
    until = clock.local_day_bounds(day)[1]
    totals = totals_as_of(session, merchant_id=merchant_id, until=until)
    scopes: dict[tuple[int, int], list[int]] = {}
    for cid, owner_id, store_id, _created in customers.customer_facts(session, actor=system_principal(merchant_id)):
        if cid not in totals:
            continue
        st, ow = store_id or 0, owner_id or 0
        for key in {(st, 0), (0, ow), (st, ow)} - {(0, 0)}:
            scopes.setdefault(key, []).append(cid)
    settings = get_settings(session, merchant_id=merchant_id)
    t = RfmSnapshot
    session.execute(delete(t).where(t.merchant_id == merchant_id, t.day == day))
    rows: list[dict[str, Any]] = []

    def put(basis: str, key: tuple[int, int], dim: str, counts: dict[str, int], values: dict[str, int],
            distribution: dict[str, list[int]], cuts: dict[str, list[int]]) -> None:
        rows.extend({"merchant_id": merchant_id, "day": day, "basis": basis, "store_id": key[0],
                     "owner_id": key[1], "dim": dim, "segment": seg, "customers": n, "value_cents": values[seg],
                     "scores": None} for seg, n in counts.items() if n)
        # the scope's summary (for the whole merchant also the mark that the day, or the dimension's day,
        # is written)
        rows.append({"merchant_id": merchant_id, "day": day, "basis": basis, "store_id": key[0],
                     "owner_id": key[1], "dim": dim, "segment": "", "customers": sum(counts.values()),
                     "value_cents": sum(values.values()), "scores": {"cuts": cuts, "distribution": distribution}})

    def add(basis: str, key: tuple[int, int], members: list[CustomerRfm], cuts: dict[str, list[int]]) -> None:
        counts: dict[str, int] = {}
        values: dict[str, int] = {}
        distribution = {k: [0] * 5 for k in ("r", "f", "m")}
        for c in members:
            counts[c.segment] = counts.get(c.segment, 0) + 1
            values[c.segment] = values.get(c.segment, 0) + c.monetary_cents
            distribution["r"][c.r - 1] += 1
            distribution["f"][c.f - 1] += 1
            distribution["m"][c.m - 1] += 1
        put(basis, key, "", counts, values, distribution, cuts)

    bases = {method: basis_of(method, settings.rfm_thresholds) for method in METHODS}
    for method in METHODS:
        everyone, cuts = score(totals, as_of=day, method=method, thresholds=settings.rfm_thresholds)
        add(bases[method], (0, 0), everyone, cuts)
        by_id = {c.customer_id: c for c in everyone} if method == "thresholds" else {}
        for key, ids in sorted(scopes.items()):
            if method == "thresholds":  # fixed cut points: a customer scores the same in every scope
                add(bases[method], key, [by_id[cid] for cid in ids], cuts)
            else:  # quintiles are cut within the scope
                add(bases[method], key, *score({cid: totals[cid] for cid in ids}, as_of=day, method=method,
                                               thresholds=settings.rfm_thresholds))
        del everyone, by_id
    del totals, scopes
    if aggregates.dims_usable(session, merchant_id=merchant_id):
        # each dimension as `_compute` scores it for a day before today (`aggregates.dim_totals_as_of` and
        # `score`), only counted: the (customer, days, orders, cents) rows are made once for both methods,
        # and tallied per (R, F, M, one order or more) as `_listed` does, no customer kept
        dims = aggregates.dim_names(session, merchant_id=merchant_id)
        for dim, dim_totals in aggregates.dims_totals_as_of(session, merchant_id=merchant_id, dims=dims,
                                                            until=until):
            listed = [(cid, (day - local_day(last)).days, n, cents) for cid, (last, n, cents) in dim_totals.items()]
            del dim_totals
            for method in METHODS:
                scoring = _list_scoring(listed, as_of=day, method=method, thresholds=settings.rfm_thresholds)
                groups: dict[tuple[int, int, int, int], list[int]] = {}
                for _cid, days, n, cents in listed:
                    g = groups.setdefault((*scoring.scores_of(days, n, cents), 1 if n == 1 else 2), [0, 0])
                    g[0] += 1
                    g[1] += cents
                _scored, counts, values, distribution = _summary([(*k, v[0], v[1]) for k, v in groups.items()])
                put(bases[method], (0, 0), dim, counts, values, distribution, scoring.cuts)
    for i in range(0, len(rows), EXPORT_BATCH):
        session.execute(insert(t), rows[i:i + EXPORT_BATCH])
    session.flush()
    return len(rows)


def snapshot_days(session: Session, *, merchant_id: int, since: dt.date) -> set[dt.date]:
    t = RfmSnapshot
    return set(session.scalars(select(t.day).where(t.merchant_id == merchant_id, t.day >= since, t.segment == "",
                                                   t.store_id == 0, t.owner_id == 0, t.dim == "").distinct()))


def advance_snapshots(session: Session, *, today: dt.date) -> dict[int, list[dt.date]]:
    """For every merchant whose aggregates are built: write yesterday's snapshot when missing, then up to
    SNAPSHOT_BACKFILL_PER_RUN missing days of the last SNAPSHOT_BACKFILL_DAYS (newest first). Idempotent."""
    yesterday = today - dt.timedelta(days=1)
    first = today - dt.timedelta(days=SNAPSHOT_BACKFILL_DAYS)
    done: dict[int, list[dt.date]] = {}
    for merchant_id in list(session.scalars(select(AggregateState.merchant_id).order_by(AggregateState.merchant_id))):
        have = snapshot_days(session, merchant_id=merchant_id, since=first)
        missing = [yesterday - dt.timedelta(days=i) for i in range((yesterday - first).days + 1)]
        missing = [d for d in missing if d not in have]
        todo = missing[:1 + SNAPSHOT_BACKFILL_PER_RUN] if missing and missing[0] == yesterday else (
            missing[:SNAPSHOT_BACKFILL_PER_RUN])
        for day in todo:
            write_snapshot(session, merchant_id=merchant_id, day=day)
        if todo:
            done[merchant_id] = todo
    return done


# ---------------------------------------------------------------- saved segments


def _check_segment(segment: str) -> str:
    if segment not in SEGMENTS:
        raise field_error("segment", "Unknown segment.")
    return segment


def save_segment(session: Session, *, actor: Principal, name: str, segment: str, store_id: int | None = None,
                 guide_id: int | None = None) -> SavedSegment:
    """Save an RFM segment (optionally narrowed to a store or guide) as a named customer filter. A guide's
    saved segment is always narrowed to their own customers."""
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise field_error("name", "Enter a name of 1 to 60 characters.")
    _check_segment(segment)
    if actor.role == Role.GUIDE:
        guide_id = actor.staff_id
    if store_id is None and actor.role in (Role.STORE_MANAGER,) and actor.store_ids:
        store_id = actor.store_ids[0]
    exists = session.scalar(select(SavedSegment.id).where(SavedSegment.merchant_id == actor.merchant_id,
                                                          SavedSegment.name == name))
    if exists:
        raise Conflict("A saved segment with this name exists.", code="segment_exists")
    row = SavedSegment(merchant_id=actor.merchant_id, name=name, segment=segment, store_id=store_id,
                       owner_id=guide_id, created_by=actor.staff_id, created_at=clock.now())
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="analytics.segment_saved", target_type="analytics_segment",
                 target_id=row.id, details={"name": name, "segment": segment})
    return row


def list_segments(session: Session, *, actor: Principal) -> list[SavedSegment]:
    stmt = scoped(select(SavedSegment), SavedSegment, actor).order_by(SavedSegment.id)
    return list(session.scalars(stmt))


def get_segment(session: Session, segment_id: int, *, actor: Principal) -> SavedSegment:
    return get_scoped(session, SavedSegment, segment_id, actor)


def delete_segment(session: Session, segment_id: int, *, actor: Principal) -> None:
    row = get_segment(session, segment_id, actor=actor)
    if actor.role == Role.GUIDE and row.created_by != actor.staff_id:
        raise NotFound()
    session.delete(row)
    session.flush()


def _members(session: Session, row: SavedSegment, *, actor: Principal, as_of: dt.date | None,
             summary: bool) -> _Computation:
    day = as_of or clock.today_local()
    filters = Filters(start=day, end=day, store_id=row.store_id, guide_id=row.owner_id)
    settings = get_settings(session, merchant_id=actor.merchant_id)
    return _compute(session, actor=actor, filters=filters, until=filters.until, as_of=day,
                    method=settings.rfm_method, thresholds=settings.rfm_thresholds, summary=summary)


def segment_members(session: Session, segment_id: int, *, actor: Principal, as_of: dt.date | None = None,
                    after: int | None = None, limit: int = MEMBERS_PAGE) -> MemberPage:
    """One page of the saved segment's members now (scores as of today, or `as_of`) in the actor's scope,
    by customer id after `after`, with how many members there are in all."""
    row = get_segment(session, segment_id, actor=actor)
    comp = _members(session, row, actor=actor, as_of=as_of, summary=True)
    limit = max(1, min(limit, 1000))
    items = comp.page(after, limit + 1, row.segment)
    more = len(items) > limit
    items = items[:limit]
    return MemberPage(items=items, next_cursor=items[-1].customer_id if more else None,
                      total=comp.counts[row.segment])


def segment_member_ids(session: Session, segment_id: int, *, actor: Principal) -> list[int]:
    """Every member's customer id now (read page by page), e.g. to send them a coupon."""
    row = get_segment(session, segment_id, actor=actor)
    comp = _members(session, row, actor=actor, as_of=None, summary=False)
    return [c.customer_id for batch in comp.iter(row.segment) for c in batch]


MEMBER_COLUMNS = ("customer_id", "nickname", "phone", "owner", "store", "segment", "recency_days", "frequency",
                  "monetary_yuan", "r", "f", "m")


def member_csv(session: Session, segment_id: int, *, actor: Principal) -> Iterator[str]:
    """The members as CSV text (header first); phones masked unless the role may export them. Audited.
    Members are read page by page and written to a temporary file (spilled to disk when large) while the
    session is open; the returned iterator streams that file."""
    actor.require("customers.export")
    row = get_segment(session, segment_id, actor=actor)
    comp = _members(session, row, actor=actor, as_of=None, summary=False)
    unmask = actor.can("customers.export_phone")
    # closed by the stream below, which outlives this call
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+", encoding="utf-8",  # noqa: SIM115
                                        newline="")
    n = 0
    for chunk in customers.iter_csv([list(MEMBER_COLUMNS)]):
        out.write(chunk)
    for batch in comp.iter(row.segment):
        contacts = customers.contacts_by_ids(session, actor=actor, ids=[c.customer_id for c in batch], unmask=unmask)
        rows = [[str(c.customer_id), *contacts[c.customer_id], c.segment, str(c.recency_days), str(c.frequency),
                 cents_to_yuan_str(c.monetary_cents), str(c.r), str(c.f), str(c.m)]
                for c in batch if c.customer_id in contacts]
        n += len(rows)
        for i, chunk in enumerate(customers.iter_csv(rows)):
            if i:  # the first chunk is the byte-order mark, written once above
                out.write(chunk)
    audit.record(session, actor=actor, action="analytics.segment_export", target_type="analytics_segment",
                 target_id=segment_id, details={"rows": n, "phones_unmasked": unmask})
    out.seek(0)

    def stream() -> Iterator[str]:
        with out:
            while True:
                text = out.read(64 * 1024)
                if not text:
                    return
                yield text

    return stream()
