"""attribution: fission figures (裂变). Per sharer and per share: shares made, visits, unique visitors, new
customers brought, paid orders and GMV; the fission tree (who brought whom: depth, width) of a customer or a
campaign; the K-factor of a period (new customers brought by customers, per sharing customer).

A customer is brought by the sharer of their first-ever touch that has a sharer (`FissionEdge`, kept by
`shares.record_touch`). Orders and GMV count paid orders whose last touch came through the sharer's shares."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import String, cast, func, literal, select
from sqlalchemy.orm import Session

from siyu.attribution.models.shares import FissionEdge, FunnelEvent, Share, Touch
from siyu.attribution.service.funnel import FUNNEL_KINDS
from siyu.core.errors import field_error
from siyu.customers import service as customers
from siyu.merchants import service as merchants

SHARER_KINDS = ("staff", "customer")
MAX_TREE_NODES = 2000


@dataclasses.dataclass
class SharerStats:
    kind: str  # "staff", "customer" or "share"
    id: int
    name: str = ""
    shares: int = 0
    visits: int = 0
    unique_visitors: int = 0
    new_customers: int = 0
    orders: int = 0
    gmv_cents: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _visitor_key() -> Any:
    # A touch without a visitor id (an official-account follow) counts its customer as the visitor.
    return func.coalesce(Touch.visitor_id, literal("c:").concat(cast(Touch.customer_id, String)))


def _period(stmt: Any, column: Any, start: dt.datetime | None, end: dt.datetime | None) -> Any:
    if start is not None:
        stmt = stmt.where(column >= start)
    if end is not None:
        stmt = stmt.where(column < end)
    return stmt


def _columns(kind: str) -> tuple[Any, Any, Any]:
    if kind == "staff":
        return Share.sharer_staff_id, Touch.sharer_staff_id, FissionEdge.by_staff_id
    if kind == "customer":
        return Share.sharer_customer_id, Touch.sharer_customer_id, FissionEdge.by_customer_id
    raise field_error("sharer", "Choose staff or customer.")


def sharer_stats(session: Session, *, merchant_id: int, kind: str, start: dt.datetime | None = None,
                 end: dt.datetime | None = None, sharer_ids: list[int] | None = None,
                 limit: int | None = 20) -> list[SharerStats]:
    """The sharers of one kind with their figures, most new customers first (then visits, GMV)."""
    share_col, touch_col, edge_col = _columns(kind)
    found: dict[int, SharerStats] = {}

    def row(sharer_id: int) -> SharerStats:
        return found.setdefault(sharer_id, SharerStats(kind=kind, id=sharer_id))

    def only(stmt: Any, column: Any) -> Any:
        stmt = stmt.where(column.is_not(None))
        return stmt.where(column.in_(sharer_ids)) if sharer_ids is not None else stmt

    q = only(select(share_col, func.count(Share.id)).where(Share.merchant_id == merchant_id), share_col)
    for sharer_id, n in session.execute(_period(q, Share.created_at, start, end).group_by(share_col)):
        row(sharer_id).shares = n
    q = only(select(touch_col, func.count(Touch.id), func.count(func.distinct(_visitor_key())))
             .where(Touch.merchant_id == merchant_id), touch_col)
    for sharer_id, visits, unique in session.execute(_period(q, Touch.at, start, end).group_by(touch_col)):
        row(sharer_id).visits, row(sharer_id).unique_visitors = visits, unique
    q = only(select(edge_col, func.count(FissionEdge.id)).where(FissionEdge.merchant_id == merchant_id), edge_col)
    for sharer_id, n in session.execute(_period(q, FissionEdge.at, start, end).group_by(edge_col)):
        row(sharer_id).new_customers = n
    q = only(select(share_col, func.count(func.distinct(FunnelEvent.order_id)), func.sum(FunnelEvent.amount_cents))
             .join(Share, Share.id == FunnelEvent.share_id)
             .where(FunnelEvent.merchant_id == merchant_id, FunnelEvent.kind == FUNNEL_KINDS["pay"]), share_col)
    for sharer_id, orders, gmv in session.execute(_period(q, FunnelEvent.at, start, end).group_by(share_col)):
        row(sharer_id).orders, row(sharer_id).gmv_cents = orders, int(gmv or 0)
    ranked = sorted(found.values(), key=lambda s: (-s.new_customers, -s.visits, -s.gmv_cents, s.id))
    if limit is not None:
        ranked = ranked[:limit]
    _name(session, merchant_id, ranked)
    return ranked


def _name(session: Session, merchant_id: int, rows: list[SharerStats]) -> None:
    staff = merchants.staff_names(session, merchant_id, [r.id for r in rows if r.kind == "staff"])
    people = customers.nicknames_of(session, merchant_id, [r.id for r in rows if r.kind == "customer"])
    for r in rows:
        r.name = (staff if r.kind == "staff" else people).get(r.id, "") if r.kind != "share" else r.name


def share_stats(session: Session, *, merchant_id: int, share_ids: list[int]) -> dict[int, SharerStats]:
    """Figures of each share: visits, unique visitors, new customers brought, paid orders, GMV."""
    ids = [i for i in share_ids if isinstance(i, int)]
    out = {i: SharerStats(kind="share", id=i, shares=1) for i in ids}
    if not ids:
        return out
    for share_id, visits, unique in session.execute(
            select(Touch.share_id, func.count(Touch.id), func.count(func.distinct(_visitor_key())))
            .where(Touch.merchant_id == merchant_id, Touch.share_id.in_(ids)).group_by(Touch.share_id)):
        out[share_id].visits, out[share_id].unique_visitors = visits, unique
    for share_id, n in session.execute(
            select(FissionEdge.share_id, func.count(FissionEdge.id))
            .where(FissionEdge.merchant_id == merchant_id, FissionEdge.share_id.in_(ids)).group_by(FissionEdge.share_id)):
        out[share_id].new_customers = n
    for share_id, orders, gmv in session.execute(
            select(FunnelEvent.share_id, func.count(func.distinct(FunnelEvent.order_id)), func.sum(FunnelEvent.amount_cents))
            .where(FunnelEvent.merchant_id == merchant_id, FunnelEvent.kind == FUNNEL_KINDS["pay"],
                   FunnelEvent.share_id.in_(ids)).group_by(FunnelEvent.share_id)):
        out[share_id].orders, out[share_id].gmv_cents = orders, int(gmv or 0)
    return out


# ---------------------------------------------------------------- trees


@dataclasses.dataclass
class TreeNode:
    kind: str  # "customer" or "staff"
    id: int
    name: str = ""
    at: dt.datetime | None = None
    children: list[TreeNode] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "at": self.at,
                "children": [c.as_dict() for c in self.children]}


@dataclasses.dataclass
class FissionTree:
    roots: list[TreeNode]
    # Levels below the roots; the most customers on one level; every customer brought, at any depth.
    depth: int
    width: int
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"roots": [r.as_dict() for r in self.roots], "depth": self.depth, "width": self.width,
                "size": self.size}


def _shape(levels: list[int]) -> tuple[int, int, int]:
    levels = [n for n in levels if n]
    return len(levels), max(levels, default=0), sum(levels)


def customer_tree(session: Session, *, merchant_id: int, customer_id: int, max_depth: int = 20) -> FissionTree:
    """Everyone a customer brought, and whom they brought, level by level."""
    root = TreeNode(kind="customer", id=customer_id)
    seen = {customer_id}
    frontier = {customer_id: root}
    levels: list[int] = []
    size = 0
    while frontier and len(levels) < max_depth and size < MAX_TREE_NODES:
        edges = list(session.execute(
            select(FissionEdge.customer_id, FissionEdge.by_customer_id, FissionEdge.at)
            .where(FissionEdge.merchant_id == merchant_id, FissionEdge.by_customer_id.in_(list(frontier)))
            .order_by(FissionEdge.at, FissionEdge.id)))
        next_frontier: dict[int, TreeNode] = {}
        for child_id, parent_id, at in edges:
            if child_id in seen:
                continue
            seen.add(child_id)
            node = TreeNode(kind="customer", id=child_id, at=at)
            frontier[parent_id].children.append(node)
            next_frontier[child_id] = node
        levels.append(len(next_frontier))
        size += len(next_frontier)
        frontier = next_frontier
    _name_tree(session, merchant_id, [root])
    depth, width, total = _shape(levels)
    return FissionTree(roots=[root], depth=depth, width=width, size=total)


def campaign_tree(session: Session, *, merchant_id: int, campaign: str) -> FissionTree:
    """The customers a campaign brought (shares of one target, or one named campaign), as a forest under the
    sharers who started it (staff or customers not brought by the campaign themselves)."""
    edges = list(session.execute(
        select(FissionEdge.customer_id, FissionEdge.by_customer_id, FissionEdge.by_staff_id, FissionEdge.at)
        .where(FissionEdge.merchant_id == merchant_id, FissionEdge.campaign == campaign)
        .order_by(FissionEdge.at, FissionEdge.id).limit(MAX_TREE_NODES)))
    brought = {e.customer_id for e in edges}
    nodes: dict[tuple[str, int], TreeNode] = {}
    children: dict[tuple[str, int], list[TreeNode]] = defaultdict(list)
    for e in edges:
        node = nodes.setdefault(("customer", e.customer_id), TreeNode(kind="customer", id=e.customer_id, at=e.at))
        parent = ("customer", e.by_customer_id) if e.by_customer_id is not None else ("staff", e.by_staff_id)
        if parent not in nodes:
            nodes[parent] = TreeNode(kind=parent[0], id=parent[1])
        children[parent].append(node)
    for key, kids in children.items():
        nodes[key].children = kids
    roots = [n for key, n in nodes.items() if key[0] == "staff" or key[1] not in brought]
    roots = [n for n in roots if n.children]
    levels: list[int] = []
    level = roots
    seen: set[tuple[str, int]] = {(n.kind, n.id) for n in roots}
    while level:
        nxt = [c for n in level for c in n.children if (c.kind, c.id) not in seen]
        seen.update((c.kind, c.id) for c in nxt)
        levels.append(len(nxt))
        level = nxt
    _name_tree(session, merchant_id, roots)
    depth, width, total = _shape(levels)
    return FissionTree(roots=roots, depth=depth, width=width, size=total)


def _walk(nodes: list[TreeNode]) -> list[TreeNode]:
    out, stack = [], list(nodes)
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(n.children)
    return out


def _name_tree(session: Session, merchant_id: int, roots: list[TreeNode]) -> None:
    everyone = _walk(roots)
    staff = merchants.staff_names(session, merchant_id, [n.id for n in everyone if n.kind == "staff"])
    people = customers.nicknames_of(session, merchant_id, [n.id for n in everyone if n.kind == "customer"])
    for n in everyone:
        n.name = (staff if n.kind == "staff" else people).get(n.id, "")


def campaigns(session: Session, *, merchant_id: int, limit: int = 20) -> list[tuple[str, int]]:
    """Campaigns by the customers they brought, most first."""
    n = func.count(FissionEdge.id)
    rows = session.execute(select(FissionEdge.campaign, n).where(FissionEdge.merchant_id == merchant_id,
                                                                 FissionEdge.campaign.is_not(None))
                           .group_by(FissionEdge.campaign).order_by(n.desc(), FissionEdge.campaign).limit(limit))
    return [(c, k) for c, k in rows]


def brought_by(session: Session, *, merchant_id: int, customer_id: int) -> list[dict[str, Any]]:
    """The customers this customer brought directly, oldest first, each with how many they brought."""
    edges = list(session.execute(select(FissionEdge.customer_id, FissionEdge.at).where(
        FissionEdge.merchant_id == merchant_id, FissionEdge.by_customer_id == customer_id)
        .order_by(FissionEdge.at, FissionEdge.id).limit(500)))
    ids = [e.customer_id for e in edges]
    onward = dict(session.execute(select(FissionEdge.by_customer_id, func.count(FissionEdge.id)).where(
        FissionEdge.merchant_id == merchant_id, FissionEdge.by_customer_id.in_(ids)).group_by(FissionEdge.by_customer_id)
    ).all()) if ids else {}
    names = customers.nicknames_of(session, merchant_id, ids)
    return [{"customer_id": e.customer_id, "nickname": names.get(e.customer_id, ""), "at": e.at,
             "brought": int(onward.get(e.customer_id, 0))} for e in edges]


# ---------------------------------------------------------------- K-factor


def k_factor(session: Session, *, merchant_id: int, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """New customers brought by customers in [start, end), per customer who made a share in that period.
    `k_bps` is the factor in basis points (10000 = 1.0: every sharing customer brought one)."""
    new = session.scalar(select(func.count(FissionEdge.id)).where(
        FissionEdge.merchant_id == merchant_id, FissionEdge.by_customer_id.is_not(None),
        FissionEdge.at >= start, FissionEdge.at < end)) or 0
    sharing = session.scalar(select(func.count(func.distinct(Share.sharer_customer_id))).where(
        Share.merchant_id == merchant_id, Share.sharer_customer_id.is_not(None),
        Share.created_at >= start, Share.created_at < end)) or 0
    k_bps = (new * 10000 + sharing // 2) // sharing if sharing else 0
    return {"start": start, "end": end, "new_customers": new, "sharing_customers": sharing, "k_bps": k_bps,
            "k_text": f"{k_bps // 10000}.{(k_bps % 10000) // 100:02d}"}
