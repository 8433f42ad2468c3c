"""The programme's settings: enrolment mode, levels, self-purchase, withdrawal limits, grades."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import ValidationFailed, field_error
from siyu.distribution.models import Programme

ENROLMENT_MODES = ("anyone", "first_purchase", "approval", "invitation")
ENROLMENT_LABELS = {"anyone": "Anyone can join", "first_purchase": "After a first purchase",
                    "approval": "Application with approval", "invitation": "By invitation only"}
PAYOUT_METHODS = ("sandbox", "wechatpay")
# Never more than three levels; the third only when the merchant explicitly allows it.
HARD_CAP_LEVELS = 2
MAX_LEVELS = 3
MAX_CENTS = 10**11
DEFAULT_GRADES: list[dict[str, Any]] = [
    {"code": "junior", "name": "初级", "min_settled_sales_cents": 0, "min_team_size": 0},
    {"code": "intermediate", "name": "中级", "min_settled_sales_cents": 100_000, "min_team_size": 5},
    {"code": "senior", "name": "高级", "min_settled_sales_cents": 1_000_000, "min_team_size": 20},
]


def _default(merchant_id: int) -> Programme:
    return Programme(merchant_id=merchant_id, enabled=True, enrolment_mode="anyone", levels=2,
                     allow_third_level=False, self_purchase=False, min_withdrawal_cents=100,
                     daily_withdrawal_limit_cents=500_000, upline_changes_per_30_days=1, payout_method="sandbox",
                     grades=[dict(g) for g in DEFAULT_GRADES], updated_at=clock.now())


def get_programme(session: Session, *, merchant_id: int) -> Programme:
    """The merchant's programme; the defaults (not stored) when it never changed them."""
    row = session.scalars(select(Programme).where(Programme.merchant_id == merchant_id)).first()
    return row if row is not None else _default(merchant_id)


def effective_levels(programme: Programme) -> int:
    """Levels that pay: 1 or 2, 3 only when explicitly allowed."""
    cap = MAX_LEVELS if programme.allow_third_level else HARD_CAP_LEVELS
    return max(1, min(programme.levels, cap))


def grades(programme: Programme) -> list[dict[str, Any]]:
    return list(programme.grades or DEFAULT_GRADES)


def grade_names(programme: Programme) -> dict[str, str]:
    return {g["code"]: g["name"] for g in grades(programme)}


def _int(changes: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = changes.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise field_error(key, "Must be a whole number from {low} to {high}.", low=low, high=high)
    return value


def _clean_grades(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= 10:
        raise field_error("grades", "Give one to ten grades.")
    out: list[dict[str, Any]] = []
    codes: set[str] = set()
    for g in value:
        if not isinstance(g, dict):
            raise field_error("grades", "Each grade needs a code and a name.")
        code, name = str(g.get("code") or "").strip()[:20], str(g.get("name") or "").strip()[:20]
        sales, team = g.get("min_settled_sales_cents", 0), g.get("min_team_size", 0)
        if not code or not name or code in codes or not code.replace("_", "").isalnum():
            raise field_error("grades", "Each grade needs a unique code (letters, digits) and a name.")
        for v in (sales, team):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_CENTS:
                raise field_error("grades", "Grade thresholds must be whole numbers of at least 0.")
        codes.add(code)
        out.append({"code": code, "name": name, "min_settled_sales_cents": sales, "min_team_size": team})
    return out


def update_programme(session: Session, *, actor: Principal, **changes: Any) -> Programme:
    """Change some settings (brand admin). Levels are 1 or 2; 3 only with `allow_third_level`."""
    actor.require("merchant.manage")
    stmt = select(Programme).where(Programme.merchant_id == actor.merchant_id).with_for_update()
    row = session.scalars(stmt).first()
    if row is None:
        # The first change stores the defaults; a racing first change loses on the unique merchant_id
        # inside the savepoint and then locks the winner's row.
        try:
            with session.begin_nested():
                session.add(_default(actor.merchant_id))
                session.flush()
        except IntegrityError:
            pass
        row = session.scalars(stmt.execution_options(populate_existing=True)).one()
    if "enrolment_mode" in changes and changes["enrolment_mode"] is not None:
        if changes["enrolment_mode"] not in ENROLMENT_MODES:
            raise field_error("enrolment_mode", "Unknown enrolment mode.")
        row.enrolment_mode = changes["enrolment_mode"]
    if changes.get("payout_method") is not None:
        if changes["payout_method"] not in PAYOUT_METHODS:
            raise field_error("payout_method", "Unknown payout method.")
        row.payout_method = changes["payout_method"]
    for key in ("enabled", "allow_third_level", "self_purchase"):
        if changes.get(key) is not None:
            if not isinstance(changes[key], bool):
                raise field_error(key, "Must be true or false.")
            setattr(row, key, changes[key])
    levels = _int(changes, "levels", 1, MAX_LEVELS)
    if levels is not None:
        row.levels = levels
    if row.levels > HARD_CAP_LEVELS and not row.allow_third_level:
        raise ValidationFailed("A third level needs to be explicitly allowed; more than three are never allowed.",
                               code="levels_not_allowed", details={"fields": {"levels": "max 2"}})
    for key in ("min_withdrawal_cents", "daily_withdrawal_limit_cents"):
        value = _int(changes, key, 1, MAX_CENTS)
        if value is not None:
            setattr(row, key, value)
    if row.min_withdrawal_cents > row.daily_withdrawal_limit_cents:
        raise field_error("min_withdrawal_cents", "The minimum withdrawal cannot exceed the daily limit.")
    churn = _int(changes, "upline_changes_per_30_days", 0, 100)
    if churn is not None:
        row.upline_changes_per_30_days = churn
    if changes.get("grades") is not None:
        row.grades = _clean_grades(changes["grades"])
    row.updated_at = clock.now()
    session.flush()
    return row


def as_dict(programme: Programme, *, after_sales_days: int) -> dict[str, Any]:
    return {"enabled": programme.enabled, "enrolment_mode": programme.enrolment_mode, "levels": programme.levels,
            "effective_levels": effective_levels(programme), "allow_third_level": programme.allow_third_level,
            "self_purchase": programme.self_purchase, "min_withdrawal_cents": programme.min_withdrawal_cents,
            "daily_withdrawal_limit_cents": programme.daily_withdrawal_limit_cents,
            "upline_changes_per_30_days": programme.upline_changes_per_30_days,
            "payout_method": programme.payout_method, "grades": grades(programme),
            "after_sales_days": after_sales_days}
