"""Commission rules and the engine that picks one for an order line.

The most specific rule wins, in this order:

- distributors: product rule > category rule > grade rule > default rule, per level;
- guides (导购提成, level 1 only): guide rule > store rule > product rule > category rule > default rule.

Among rules of the same scope the newest wins. A rule pays `bps` of the line's base (what the customer
actually paid for the line after discounts, shipping excluded) or `fixed` cents per unit, never more than
the base.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, bindparam, select, update
from sqlalchemy.orm import Session

from siyu.core.auth import Principal
from siyu.core.errors import NotFound, ValidationFailed, field_error
from siyu.core.money import BPS_WHOLE, apply_bps
from siyu.db import execute_core
from siyu.distribution.models import CommissionRule

AUDIENCES = ("distributor", "guide")
SCOPE_ORDER = {
    "distributor": ("product", "category", "grade", "default"),
    "guide": ("guide", "store", "product", "category", "default"),
}
SCOPE_LABELS = {"product": "Product", "category": "Category", "grade": "Grade", "default": "Default",
                "guide": "Guide", "store": "Store"}
KINDS = ("bps", "fixed")
STATUSES = ("active", "draft")
MAX_FIXED_CENTS = 10**9


@dataclasses.dataclass(frozen=True)
class Rule:
    """A rule as the engine sees it (from a row or a draft)."""

    id: int | None
    audience: str
    scope: str
    scope_id: int | None
    grade: str | None
    level: int
    kind: str
    value: int

    @functools.cached_property
    def _snapshot(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def snapshot(self) -> dict[str, Any]:
        """The rule as stored with each commission it produced (shared, never mutated)."""
        return self._snapshot

    def amount(self, base_cents: int, quantity: int) -> int:
        if base_cents <= 0:
            return 0
        if self.kind == "bps":
            return apply_bps(base_cents, self.value)
        return min(self.value * quantity, base_cents)


def rule_of(row: Any) -> Rule:
    """The rule of a `CommissionRule` (or a row of its fields)."""
    return Rule(id=row.id, audience=row.audience, scope=row.scope, scope_id=row.scope_id, grade=row.grade,
                level=row.level, kind=row.kind, value=row.value)


class RuleSet:
    """Rules indexed for lookup: (audience, level, scope, key) -> the newest rule."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._index: dict[tuple[str, int, str, Any], Rule] = {}
        for rule in sorted(rules, key=lambda r: r.id or 0):
            key = rule.grade if rule.scope == "grade" else (None if rule.scope == "default" else rule.scope_id)
            self._index[(rule.audience, rule.level, rule.scope, key)] = rule

    def __bool__(self) -> bool:
        return bool(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def has_audience(self, audience: str) -> bool:
        return any(k[0] == audience for k in self._index)

    def resolve(self, *, audience: str, level: int, product_id: int | None, category_id: int | None,
                grade: str | None = None, store_id: int | None = None, guide_id: int | None = None) -> Rule | None:
        keys = {"product": product_id, "category": category_id, "grade": grade, "default": None,
                "store": store_id, "guide": guide_id}
        for scope in SCOPE_ORDER[audience]:
            key = keys[scope]
            if scope != "default" and key is None:
                continue
            found = self._index.get((audience, level, scope, key))
            if found is not None:
                return found
        return None


def load_ruleset(session: Session, *, merchant_id: int, status: str = "active") -> RuleSet:
    rows = execute_core(session, _RULES, {"merchant_id": merchant_id, "status": status})
    return RuleSet(rule_of(r) for r in rows)


# Built once (every paid order asks): the rule's fields, the values as parameters.
_RULES_TABLE = CommissionRule.__table__
_RULES = select(*(_RULES_TABLE.c[k] for k in ("id", "audience", "scope", "scope_id", "grade", "level", "kind",
                                               "value"))).where(
    _RULES_TABLE.c.merchant_id == bindparam("merchant_id", type_=BigInteger()),
    _RULES_TABLE.c.status == bindparam("status", type_=_RULES_TABLE.c.status.type))


def list_rules(session: Session, *, merchant_id: int, status: str = "active") -> list[CommissionRule]:
    return list(session.scalars(
        select(CommissionRule).where(CommissionRule.merchant_id == merchant_id, CommissionRule.status == status)
        .order_by(CommissionRule.audience, CommissionRule.level, CommissionRule.scope, CommissionRule.id)))


def clean_rule(data: dict[str, Any], *, grade_codes: Iterable[str]) -> dict[str, Any]:
    """Check one rule's fields; ValidationFailed with the field's error when one is wrong."""
    audience = data.get("audience") or "distributor"
    if audience not in AUDIENCES:
        raise field_error("audience", "Unknown audience.")
    scope = data.get("scope")
    if scope not in SCOPE_ORDER[audience]:
        raise field_error("scope", "This scope does not apply to this audience.")
    level = data.get("level", 1)
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 3:
        raise field_error("level", "The level must be 1, 2 or 3.")
    if audience == "guide" and level != 1:
        raise field_error("level", "Guide commission has one level.")
    kind = data.get("kind")
    if kind not in KINDS:
        raise field_error("kind", "Choose a percentage or a fixed amount per unit.")
    value = data.get("value")
    high = BPS_WHOLE if kind == "bps" else MAX_FIXED_CENTS
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise field_error("value", "Must be a whole number from {low} to {high}.", low=0, high=high)
    scope_id, grade = None, None
    if scope == "grade":
        grade = str(data.get("grade") or "")
        if grade not in set(grade_codes):
            raise field_error("grade", "Unknown grade.")
    elif scope != "default":
        scope_id = data.get("scope_id")
        if isinstance(scope_id, bool) or not isinstance(scope_id, int) or not 0 < scope_id <= 2**53:
            raise field_error("scope_id", "Give the id this rule is for.")
    return {"audience": audience, "scope": scope, "scope_id": scope_id, "grade": grade, "level": level, "kind": kind,
            "value": value}


def create_rule(session: Session, *, actor: Principal, data: dict[str, Any], grade_codes: Iterable[str],
                status: str = "active") -> CommissionRule:
    actor.require("merchant.manage")
    if status not in STATUSES:
        raise ValidationFailed(details={"fields": {"status": "active or draft"}})
    row = CommissionRule(merchant_id=actor.merchant_id, status=status, **clean_rule(data, grade_codes=grade_codes))
    session.add(row)
    session.flush()
    return row


def delete_rule(session: Session, *, actor: Principal, rule_id: int) -> None:
    """Retire a rule (commissions already made keep their snapshot of it)."""
    actor.require("merchant.manage")
    row = session.scalars(select(CommissionRule).where(CommissionRule.id == rule_id,
                                                       CommissionRule.merchant_id == actor.merchant_id,
                                                       CommissionRule.status != "retired")).first()
    if row is None:
        raise NotFound()
    row.status = "retired"
    session.flush()


def copy_active_to_draft(session: Session, *, actor: Principal) -> int:
    """Start a draft from the current rules (the draft there was is dropped)."""
    actor.require("merchant.manage")
    session.execute(update(CommissionRule).where(CommissionRule.merchant_id == actor.merchant_id,
                                                 CommissionRule.status == "draft").values(status="retired"))
    active = list_rules(session, merchant_id=actor.merchant_id)
    for r in active:
        session.add(CommissionRule(merchant_id=actor.merchant_id, status="draft", audience=r.audience, scope=r.scope,
                                   scope_id=r.scope_id, grade=r.grade, level=r.level, kind=r.kind, value=r.value))
    session.flush()
    return len(active)


def publish_draft(session: Session, *, actor: Principal) -> int:
    """The draft becomes the rule set in force; the rules it replaces are retired."""
    actor.require("merchant.manage")
    drafts = list_rules(session, merchant_id=actor.merchant_id, status="draft")
    if not drafts:
        raise ValidationFailed("There is no draft to publish.", code="no_draft")
    session.execute(update(CommissionRule).where(CommissionRule.merchant_id == actor.merchant_id,
                                                 CommissionRule.status == "active").values(status="retired"))
    session.execute(update(CommissionRule).where(CommissionRule.merchant_id == actor.merchant_id,
                                                 CommissionRule.status == "draft").values(status="active"))
    session.flush()
    return len(drafts)


def describe(rule: CommissionRule | Rule | dict[str, Any]) -> str:
    """"10.00%" or "¥1.50/unit" for pages (a rule, or a commission's snapshot of one)."""
    kind, value = (rule.get("kind"), int(rule.get("value") or 0)) if isinstance(rule, dict) else (rule.kind, rule.value)
    if kind == "bps":
        return f"{value // 100}.{value % 100:02d}%"
    return f"¥{value // 100}.{value % 100:02d}/unit"
