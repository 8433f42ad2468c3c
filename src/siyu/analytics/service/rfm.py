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
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.analytics.models import SavedSegment
from siyu.analytics.service import aggregates
from siyu.analytics.service.common import Filters, local_day, order_facts
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
    customers: list[CustomerRfm]
    # score (1..5) -> customers, per measure
    distribution: dict[str, list[int]]

    @property
    def scored(self) -> int:
        return len(self.customers)


def quintile_cuts(values: list[int]) -> list[int]:
    """The four cut points (20/40/60/80th percentile: the value at rank ceil(k·n/5))."""
    s = sorted(values)
    n = len(s)
    if n == 0:
        return []
    return [s[-(-k * n // 5) - 1] for k in range(1, 5)]


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


def customer_ids_in_scope(session: Session, *, actor: Principal, store_id: int | None, guide_id: int | None
                          ) -> set[int] | None:
    """None when the actor sees the whole merchant and nothing narrows it."""
    if (actor.kind == "system" or actor.role == Role.BRAND_ADMIN) and store_id is None and guide_id is None:
        return None
    return {cid for cid, _o, _s, _c in customers.customer_facts(session, actor=actor, store_id=store_id,
                                                                 owner_id=guide_id)}


def _aggregates(session: Session, *, actor: Principal, filters: Filters, until: dt.datetime,
                scope: set[int] | None) -> dict[int, tuple[dt.datetime, int, int]]:
    """customer -> (last purchase, orders, net cents) from orders paid before `until`, not wholly refunded,
    over each customer's whole history, kept to the customers in scope. Without a channel or campaign
    filter the database aggregates per customer; with one, the orders are read and filtered here."""
    out: dict[int, tuple[dt.datetime, int, int]] = {}
    if filters.channel is None and filters.campaign is None and aggregates.usable(
            session, merchant_id=actor.merchant_id, until=until):
        # nothing paid after `until`: the per-customer rows are the totals as of then
        for cid, last, n, kept in aggregates.kept_totals(session, merchant_id=actor.merchant_id):
            if scope is None or cid in scope:
                out[cid] = (last, n, kept)
        return out
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


def score(aggregates: dict[int, tuple[dt.datetime, int, int]], *, as_of: dt.date, method: str,
          thresholds: dict[str, list[int]]) -> tuple[list[CustomerRfm], dict[str, list[int]]]:
    rows = [(cid, (as_of - local_day(last)).days, n, cents) for cid, (last, n, cents) in sorted(aggregates.items())]
    if method == "thresholds":
        t = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        cuts = {"r": list(t["r_days"]), "f": list(t["f_orders"]), "m": list(t["m_cents"])}

        def r_score(days: int) -> int:
            return 5 - sum(1 for c in cuts["r"] if days > c)

        def f_score(n: int) -> int:
            return 1 + sum(1 for c in cuts["f"] if n >= c)

        def m_score(cents: int) -> int:
            return 1 + sum(1 for c in cuts["m"] if cents >= c)
    else:
        neg_r = quintile_cuts([-d for _c, d, _n, _m in rows])
        cuts = {"r": [-c for c in neg_r], "f": quintile_cuts([n for _c, _d, n, _m in rows]),
                "m": quintile_cuts([m for _c, _d, _n, m in rows])}

        def r_score(days: int) -> int:
            return score_above(-days, neg_r)

        def f_score(n: int) -> int:
            return score_above(n, cuts["f"])

        def m_score(cents: int) -> int:
            return score_above(cents, cuts["m"])
    out = []
    for cid, days, n, cents in rows:
        r, f, m = r_score(days), f_score(n), m_score(cents)
        out.append(CustomerRfm(cid, days, n, cents, r, f, m, segment_of(r, f, m, n)))
    return out, cuts


def rfm(session: Session, *, actor: Principal, filters: Filters, method: str | None = None) -> RfmReport:
    """Scores and segments as of the period's last day, with each segment's count as of the day before
    the period for the trend."""
    settings = get_settings(session, merchant_id=actor.merchant_id)
    method = method or settings.rfm_method
    if method not in ("quintiles", "thresholds"):
        raise field_error("method", "Unknown RFM method.")
    scope = customer_ids_in_scope(session, actor=actor, store_id=filters.store_id, guide_id=filters.guide_id)
    now_rows, cuts = score(_aggregates(session, actor=actor, filters=filters, until=filters.until, scope=scope),
                           as_of=filters.end, method=method, thresholds=settings.rfm_thresholds)
    before_rows, _ = score(_aggregates(session, actor=actor, filters=filters, until=filters.since, scope=scope),
                           as_of=filters.start - dt.timedelta(days=1), method=method,
                           thresholds=settings.rfm_thresholds)
    counts = {s: 0 for s in SEGMENTS}
    value = {s: 0 for s in SEGMENTS}
    for c in now_rows:
        counts[c.segment] += 1
        value[c.segment] += c.monetary_cents
    before = {s: 0 for s in SEGMENTS}
    for c in before_rows:
        before[c.segment] += 1
    distribution = {k: [0] * 5 for k in ("r", "f", "m")}
    for c in now_rows:
        distribution["r"][c.r - 1] += 1
        distribution["f"][c.f - 1] += 1
        distribution["m"][c.m - 1] += 1
    return RfmReport(filters=filters, method=method, cuts=cuts,
                     segments=[SegmentRow(s, counts[s], value[s], before[s]) for s in SEGMENTS],
                     customers=now_rows, distribution=distribution)


def rfm_dict(r: RfmReport, *, with_customers: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "filters": r.filters.as_dict(), "method": r.method, "cuts": r.cuts, "scored_customers": r.scored,
        "segments": [{"segment": s.segment, "customers": s.customers, "value_cents": s.value_cents,
                      "previous_customers": s.previous_customers, "change": s.change} for s in r.segments],
        "distribution": r.distribution,
    }
    if with_customers:
        out["customers"] = [dataclasses.asdict(c) for c in r.customers]
    return out


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


def segment_members(session: Session, segment_id: int, *, actor: Principal,
                    as_of: dt.date | None = None) -> list[CustomerRfm]:
    """The saved segment's members now (scores as of today, or `as_of`), in the actor's scope."""
    row = get_segment(session, segment_id, actor=actor)
    day = as_of or clock.today_local()
    filters = Filters(start=day, end=day, store_id=row.store_id, guide_id=row.owner_id)
    scope = customer_ids_in_scope(session, actor=actor, store_id=row.store_id, guide_id=row.owner_id)
    settings = get_settings(session, merchant_id=actor.merchant_id)
    rows, _ = score(_aggregates(session, actor=actor, filters=filters, until=filters.until, scope=scope),
                    as_of=day, method=settings.rfm_method, thresholds=settings.rfm_thresholds)
    return [c for c in rows if c.segment == row.segment]


MEMBER_COLUMNS = ("customer_id", "nickname", "phone", "owner", "store", "segment", "recency_days", "frequency",
                  "monetary_yuan", "r", "f", "m")


def member_rows(session: Session, segment_id: int, *, actor: Principal) -> list[list[str]]:
    """The members as CSV rows (header first); phones masked unless the role may export them. Audited."""
    actor.require("customers.export")
    members = segment_members(session, segment_id, actor=actor)
    by_id = {c.customer_id: c for c in members}
    people = customers.customers_by_ids(session, actor=actor, ids=list(by_id))
    unmask = actor.can("customers.export_phone")
    rows = [list(MEMBER_COLUMNS)]
    for item in customers.summaries(session, people, actor=actor, unmask=unmask):
        c = by_id[item["id"]]
        rows.append([str(c.customer_id), item["nickname"], item["phone"], item["owner_name"], item["store_name"],
                     c.segment, str(c.recency_days), str(c.frequency), cents_to_yuan_str(c.monetary_cents),
                     str(c.r), str(c.f), str(c.m)])
    audit.record(session, actor=actor, action="analytics.segment_export", target_type="analytics_segment",
                 target_id=segment_id, details={"rows": len(rows) - 1, "phones_unmasked": unmask})
    return rows


def iter_member_csv(rows: list[list[str]]) -> Iterator[str]:
    return customers.iter_csv(rows)
