"""The rule simulator: what a draft rule set would have cost on the last N days of real paid orders,
by level and by grade, next to what the rules in force paid on the same orders."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.distribution.models import Commission
from siyu.distribution.service.commissions import Context, LineFacts, OrderFacts, attribution_of, compute
from siyu.distribution.service.rules import RuleSet, load_ruleset

MAX_ORDERS = 5000
PAID_STATUSES = ("paid", "shipped", "ready_for_pickup", "completed", "refunding", "refunded")


@dataclasses.dataclass
class Projection:
    days: int
    orders: int
    draft_rules: int
    # {"level": {1: {"projected_cents", "paid_cents"}}, "grade": {...}, "audience": {...}}
    by_level: dict[int, dict[str, int]]
    by_grade: dict[str, dict[str, int]]
    guide: dict[str, int]
    total: dict[str, int]
    truncated: bool

    def as_dict(self) -> dict[str, Any]:
        return {"days": self.days, "orders": self.orders, "draft_rules": self.draft_rules,
                "by_level": {str(k): v for k, v in sorted(self.by_level.items())},
                "by_grade": dict(sorted(self.by_grade.items())), "guide": self.guide, "total": self.total,
                "truncated": self.truncated}


def _recent_orders(session: Session, merchant_id: int, since: dt.datetime) -> tuple[list[OrderFacts], bool]:
    from siyu.orders import service as orders

    actor = system_principal(merchant_id)
    facts: list[OrderFacts] = []
    cursor = None
    since_day = clock.local(since).date()  # type: ignore[union-attr]
    truncated = False
    while True:
        page = orders.list_orders(session, actor=actor, filters=orders.OrderFilter(created_from=since_day),
                                  cursor=cursor, limit=100)
        paid = [o for o in page.items if o.status in PAID_STATUSES and o.paid_at is not None
                and getattr(o, "kind", "goods") == "goods"]
        lines = orders.lines_of(session, [o.id for o in paid])
        for o in paid:
            facts.append(OrderFacts(
                merchant_id=merchant_id, order_id=o.id, order_no=o.order_no, customer_id=o.customer_id,
                store_id=o.store_id, owner_id=o.owner_id,
                attribution=attribution_of(session, merchant_id=merchant_id, customer_id=o.customer_id,
                                           snapshot=o.attribution),
                lines=tuple(LineFacts(id=x.id, product_id=x.product_id, category_id=x.category_id, title=x.title,
                                      quantity=x.quantity, paid_cents=x.paid_cents) for x in lines.get(o.id, []))))
        if len(facts) >= MAX_ORDERS:
            truncated = page.next_cursor is not None
            break
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return facts[:MAX_ORDERS], truncated


def simulate(session: Session, *, merchant_id: int, days: int = 30, draft: RuleSet | None = None) -> Projection:
    """Apply `draft` (default: the stored draft rules) to the paid orders of the last `days` days.
    Today's chains and grades are used for the projection; "paid" is what the commission rows of the
    same orders say (before refunds)."""
    days = max(1, min(days, 365))
    draft = draft if draft is not None else load_ruleset(session, merchant_id=merchant_id, status="draft")
    since = clock.now() - dt.timedelta(days=days)
    facts, truncated = _recent_orders(session, merchant_id, since)
    ctx = Context.load(session, merchant_id, rules=draft)
    ctx.preload(session, merchant_id)
    by_level: dict[int, dict[str, int]] = defaultdict(lambda: {"projected_cents": 0, "paid_cents": 0})
    by_grade: dict[str, dict[str, int]] = defaultdict(lambda: {"projected_cents": 0, "paid_cents": 0})
    guide = {"projected_cents": 0, "paid_cents": 0}
    for f in facts:
        for row in compute(session, ctx, f):
            if row["beneficiary_type"] == "guide":
                guide["projected_cents"] += row["amount_cents"]
            else:
                by_level[row["level"]]["projected_cents"] += row["amount_cents"]
                by_grade[row["grade"]]["projected_cents"] += row["amount_cents"]
    order_ids = [f.order_id for f in facts]
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start:start + 500]
        rows = session.execute(select(Commission.beneficiary_type, Commission.level, Commission.grade,
                                      func.sum(Commission.amount_cents))
                               .where(Commission.merchant_id == merchant_id, Commission.order_id.in_(chunk))
                               .group_by(Commission.beneficiary_type, Commission.level, Commission.grade))
        for kind, level, grade, amount in rows:
            if kind == "guide":
                guide["paid_cents"] += int(amount or 0)
            else:
                by_level[int(level)]["paid_cents"] += int(amount or 0)
                by_grade[grade]["paid_cents"] += int(amount or 0)
    total = {"projected_cents": sum(v["projected_cents"] for v in by_level.values()) + guide["projected_cents"],
             "paid_cents": sum(v["paid_cents"] for v in by_level.values()) + guide["paid_cents"]}
    return Projection(days=days, orders=len(facts), draft_rules=len(draft), by_level=dict(by_level),
                      by_grade=dict(by_grade), guide=guide, total=total, truncated=truncated)
