"""Fission: shares, visits per share, new customers per sharing customer (K-factor), the depth and width
of the fission trees, the top sharers, by campaign.

From attribution's records: shares (who shared what, for which campaign), touches through shares
(visits) and fission edges (who brought each customer: the sharer of their first shared touch).
- shares: created in the period; visits: touches through any share in the period;
  visits per share = visits / shares active in the period (created or visited), in bps (1.5 = 15000);
- new customers: edges made in the period (customers brought by a sharer), by customers or staff;
- K-factor = customers brought by customers / customers who shared in the period (created a share or
  brought someone), in bps: 10000 means each sharing customer brought one more;
- trees: the customer→customer edges made by the period's end; a tree is rooted at a customer with
  children who was not brought by a customer; depth = levels below the root, width = the most customers
  on one level, size = customers in it (root included);
- top sharers: by customers brought in the period, then visits.
Campaign: the share's campaign (attribution names target-only shares "<target_type>:<target_id>")."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from siyu.analytics.service.common import Filters, bps
from siyu.analytics.service.gmv import customer_scope
from siyu.attribution.service import analytics_reads as attribution
from siyu.core.auth import Principal, Role
from siyu.merchants import service as merchants

TOP_SHARERS = 10


@dataclasses.dataclass(frozen=True)
class Sharer:
    kind: str  # "staff" or "customer"
    id: int
    shares: int
    visits: int
    new_customers: int


@dataclasses.dataclass(frozen=True)
class Tree:
    root_customer_id: int
    size: int
    depth: int
    width: int


@dataclasses.dataclass(frozen=True)
class CampaignRow:
    campaign: str
    shares: int
    visits: int
    new_customers: int
    sharing_customers: int
    customers_brought_by_customers: int

    @property
    def k_factor_bps(self) -> int | None:
        return bps(self.customers_brought_by_customers, self.sharing_customers)


@dataclasses.dataclass(frozen=True)
class FissionReport:
    filters: Filters
    shares: int
    active_shares: int
    visits: int
    new_customers: int
    new_by_customers: int
    sharing_customers: int
    trees: list[Tree]
    top_sharers: list[Sharer]
    campaigns: list[CampaignRow]

    @property
    def visits_per_share_bps(self) -> int | None:
        return bps(self.visits, self.active_shares)

    @property
    def k_factor_bps(self) -> int | None:
        return bps(self.new_by_customers, self.sharing_customers)

    @property
    def max_depth(self) -> int:
        return max((t.depth for t in self.trees), default=0)

    @property
    def max_width(self) -> int:
        return max((t.width for t in self.trees), default=0)


def trees_of(edges: list[tuple[int, int]]) -> list[Tree]:
    """Trees of (child, parent) customer edges, largest first."""
    children: dict[int, list[int]] = defaultdict(list)
    has_parent = set()
    for child, parent in edges:
        if child == parent:
            continue
        children[parent].append(child)
        has_parent.add(child)
    out = []
    for root in sorted(p for p in children if p not in has_parent):
        level, seen, depth, width, size = [root], {root}, 0, 1, 1
        while True:
            nxt = [c for n in level for c in children.get(n, ()) if c not in seen]
            if not nxt:
                break
            seen.update(nxt)
            depth += 1
            width = max(width, len(nxt))
            size += len(nxt)
            level = nxt
        out.append(Tree(root, size, depth, width))
    out.sort(key=lambda t: (-t.size, -t.depth, t.root_customer_id))
    return out


def fission(session: Session, *, actor: Principal, filters: Filters) -> FissionReport:
    mid = actor.merchant_id
    since, until = filters.since, filters.until
    scope = customer_scope(session, actor=actor, filters=filters)
    staff_scope: set[int] | None = None
    if scope is not None:
        staff_scope = {s.id for s in merchants.list_staff(session, actor=actor, store_id=filters.store_id)}
        if actor.role == Role.GUIDE:
            staff_scope = {actor.staff_id} if actor.staff_id else set()
        if filters.guide_id is not None:
            staff_scope &= {filters.guide_id}

    def sharer_ok(staff_id: int | None, customer_id: int | None) -> bool:
        if scope is None:
            return True
        return (staff_id is not None and staff_id in (staff_scope or set())) or (
            customer_id is not None and customer_id in scope)

    all_shares = attribution.share_rows(session, merchant_id=mid, end=until)
    share_info = {}
    for sid, staff_id, customer_id, campaign, target_type, target_id, _ch, created_at in all_shares:
        campaign = campaign or f"{target_type}:{target_id}"
        if filters.campaign is not None and campaign != filters.campaign:
            continue
        if not sharer_ok(staff_id, customer_id):
            continue
        share_info[sid] = (staff_id, customer_id, campaign, created_at)
    visits = {sid: n for sid, n in attribution.share_visit_counts(session, merchant_id=mid, start=since, end=until)
              if sid in share_info}
    created = {sid for sid, info in share_info.items() if since <= info[3] < until}
    active = created | set(visits)

    edges = []
    for customer_id, by_customer, by_staff, share_id, campaign, at in attribution.fission_edge_rows(
            session, merchant_id=mid, end=until):
        if filters.campaign is not None and campaign != filters.campaign:
            continue
        if not sharer_ok(by_staff, by_customer):
            continue
        edges.append((customer_id, by_customer, by_staff, share_id, campaign or "", at))
    period_edges = [e for e in edges if e[5] >= since]

    sharer_stats: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    campaign_stats: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"shares": 0, "visits": 0, "new": 0, "sharers": set(), "by_customers": 0})
    for sid in active:
        staff_id, customer_id, campaign, _at = share_info[sid]
        key = ("staff", staff_id) if staff_id is not None else ("customer", customer_id) if customer_id else None
        cs = campaign_stats[campaign]
        if sid in created:
            cs["shares"] += 1
            if key:
                sharer_stats[key][0] += 1  # type: ignore[index]
            if customer_id is not None:
                cs["sharers"].add(customer_id)
        cs["visits"] += visits.get(sid, 0)
        if key:
            sharer_stats[key][1] += visits.get(sid, 0)  # type: ignore[index]
    sharing_customers = {share_info[s][1] for s in created if share_info[s][1] is not None}
    for _cid, by_customer, by_staff, _sid, campaign, _at in period_edges:
        cs = campaign_stats[campaign]
        cs["new"] += 1
        if by_customer is not None:
            cs["by_customers"] += 1
            cs["sharers"].add(by_customer)
            sharing_customers.add(by_customer)
            sharer_stats[("customer", by_customer)][2] += 1
        elif by_staff is not None:
            sharer_stats[("staff", by_staff)][2] += 1
    top = sorted((Sharer(k, i, s[0], s[1], s[2]) for (k, i), s in sharer_stats.items()),
                 key=lambda s: (-s.new_customers, -s.visits, -s.shares, s.kind, s.id))[:TOP_SHARERS]
    campaigns = sorted((CampaignRow(c, v["shares"], v["visits"], v["new"], len(v["sharers"]), v["by_customers"])
                        for c, v in campaign_stats.items()), key=lambda r: (-r.new_customers, -r.visits, r.campaign))
    trees = trees_of([(e[0], e[1]) for e in edges if e[1] is not None])
    return FissionReport(filters=filters, shares=len(created), active_shares=len(active), visits=sum(visits.values()),
                         new_customers=len(period_edges),
                         new_by_customers=sum(1 for e in period_edges if e[1] is not None),
                         sharing_customers=len(sharing_customers), trees=trees, top_sharers=top, campaigns=campaigns)


def fission_dict(r: FissionReport) -> dict[str, Any]:
    return {"filters": r.filters.as_dict(), "shares": r.shares, "active_shares": r.active_shares, "visits": r.visits,
            "visits_per_share_bps": r.visits_per_share_bps, "new_customers": r.new_customers,
            "new_customers_by_customers": r.new_by_customers, "sharing_customers": r.sharing_customers,
            "k_factor_bps": r.k_factor_bps, "trees": len(r.trees), "max_depth": r.max_depth, "max_width": r.max_width,
            "largest_trees": [dataclasses.asdict(t) for t in r.trees[:10]],
            "top_sharers": [dataclasses.asdict(s) for s in r.top_sharers],
            "campaigns": [{**dataclasses.asdict(c), "k_factor_bps": c.k_factor_bps} for c in r.campaigns]}
