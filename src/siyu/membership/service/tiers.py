"""membership: tiers by growth value, their benefits at checkout (member discount, free shipping),
upgrades on the spot, scheduled downgrade reviews with a grace period, birthday gifts and paid
membership (a tier bought for N days through a service order and the normal payment)."""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import and_, extract, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core import audit, clock
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.money import apply_bps
from siyu.customers import service as customers
from siyu.membership.models.members import (
    GrowthEntry,
    Member,
    PaidMembershipPlan,
    PaidMembershipPurchase,
    Tier,
    TierChange,
)
from siyu.membership.service import members as members_service
from siyu.orders import pricing

# ---------------------------------------------------------------- tiers


def list_tiers(session: Session, merchant_id: int, *, active_only: bool = False) -> list[Tier]:
    """Tiers from the lowest threshold up."""
    stmt = select(Tier).where(Tier.merchant_id == merchant_id)
    if active_only:
        stmt = stmt.where(Tier.active.is_(True))
    return list(session.scalars(stmt.order_by(Tier.growth_threshold, Tier.id)))


def get_tier(session: Session, tier_id: int, *, merchant_id: int) -> Tier:
    tier = session.get(Tier, tier_id) if isinstance(tier_id, int) and 0 < tier_id < 2**62 else None
    if tier is None or tier.merchant_id != merchant_id:
        raise NotFound("This tier does not exist.", code="tier_not_found")
    return tier


TIER_FIELDS = ("name", "growth_threshold", "discount_bps", "discount_product_ids", "discount_category_ids",
               "points_multiplier_bps", "free_shipping", "birthday_points", "active")


def _ids(value: Any) -> list[int]:
    if isinstance(value, str):
        value = [v for v in value.replace("，", ",").split(",") if v.strip()]
    out = []
    for v in value or []:
        n = int(v.strip()) if isinstance(v, str) else v
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0 or n > 2**53:
            raise ValueError(v)
        out.append(n)
    return sorted(set(out))[:500]


def clean_tier(changes: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    ints = {"growth_threshold": (0, 10**12), "discount_bps": (0, 9_000), "points_multiplier_bps": (0, 100_000),
            "birthday_points": (0, 1_000_000)}
    for key, value in changes.items():
        if key not in TIER_FIELDS or value is None:
            continue
        if key == "name":
            value = value.strip() if isinstance(value, str) else ""
            if not 1 <= len(value) <= 40:
                errors[key] = _("Enter a name of 1 to 40 characters.")
                continue
            clean[key] = value
        elif key in ints:
            try:
                number = int(value.strip()) if isinstance(value, str) else value
                if not isinstance(number, int) or isinstance(number, bool):
                    raise ValueError
            except ValueError:
                errors[key] = _("Enter a whole number.")
                continue
            low, high = ints[key]
            if not low <= number <= high:
                errors[key] = _("Enter a number from {low} to {high}.", low=low, high=high)
                continue
            clean[key] = number
        elif key in ("discount_product_ids", "discount_category_ids"):
            try:
                clean[key] = _ids(value)
            except (ValueError, TypeError):
                errors[key] = _("Enter ids separated by commas.")
        elif key in ("free_shipping", "active"):
            clean[key] = value in (True, "1", "on", "true")
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return clean


def create_tier(session: Session, *, actor: Principal, **fields: Any) -> Tier:
    actor.require("membership.manage")
    clean = clean_tier(fields)
    if "name" not in clean:
        raise ValidationFailed(details={"fields": {"name": _("Enter a name of 1 to 40 characters.")}})
    tier = Tier(merchant_id=actor.merchant_id, **{"growth_threshold": 0, "discount_bps": 0, "points_multiplier_bps": 10000,
                                                  "free_shipping": False, "birthday_points": 0, "active": True,
                                                  "discount_product_ids": [], "discount_category_ids": [], **clean})
    try:
        with session.begin_nested():
            session.add(tier)
    except IntegrityError as exc:
        raise Conflict("A tier of this name exists.", code="tier_name_taken",
                       details={"fields": {"name": _("A tier of this name exists.")}}) from exc
    audit.record(session, actor=actor, action="membership.tier_created", target_type="membership_tier",
                 target_id=tier.id, details={k: v for k, v in clean.items()})
    return tier


def update_tier(session: Session, tier_id: int, *, actor: Principal, **fields: Any) -> Tier:
    """Change a tier; members keep their tier until their next review (never retroactive)."""
    actor.require("membership.manage")
    tier = get_tier(session, tier_id, merchant_id=actor.merchant_id)
    clean = clean_tier(fields)
    for key, value in clean.items():
        setattr(tier, key, value)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict("A tier of this name exists.", code="tier_name_taken",
                       details={"fields": {"name": _("A tier of this name exists.")}}) from exc
    audit.record(session, actor=actor, action="membership.tier_changed", target_type="membership_tier",
                 target_id=tier.id, details={k: v for k, v in clean.items()})
    return tier


def tier_for_growth(tiers: list[Tier], growth: int) -> Tier | None:
    """The highest active tier whose threshold this growth reaches."""
    best = None
    for tier in tiers:
        if tier.active and tier.growth_threshold <= growth:
            best = tier
    return best


def next_tier(tiers: list[Tier], current: Tier | None) -> Tier | None:
    floor = current.growth_threshold if current else -1
    for tier in tiers:
        if tier.active and tier.growth_threshold > floor:
            return tier
    return None


# ---------------------------------------------------------------- growth, upgrade, review


def member_by_id(session: Session, member_id: int) -> Member | None:
    return session.get(Member, member_id)


def window_growth(session: Session, member: Member, now: dt.datetime) -> int:
    """Growth earned within the evaluation window (what keeps or reaches a tier)."""
    days = members_service.rules(session, member.merchant_id).evaluation_days
    total = session.scalar(select(func.coalesce(func.sum(GrowthEntry.delta), 0)).where(
        GrowthEntry.merchant_id == member.merchant_id, GrowthEntry.member_id == member.id,
        GrowthEntry.created_at > now - dt.timedelta(days=days)))
    return max(0, int(total or 0))


def _rank(tier: Tier | None) -> tuple[int, int]:
    return (-1, 0) if tier is None else (tier.growth_threshold, tier.id)


def _change(session: Session, member: Member, *, to: Tier | None, kind: str, note: str = "") -> None:
    session.add(TierChange(merchant_id=member.merchant_id, member_id=member.id, from_tier_id=member.tier_id,
                           to_tier_id=to.id if to else None, kind=kind, note=note[:200], created_at=clock.now()))


def assign_initial_tier(session: Session, member: Member, *, now: dt.datetime) -> None:
    tiers = list_tiers(session, member.merchant_id, active_only=True)
    tier = tier_for_growth(tiers, window_growth(session, member, now))
    if tier is not None:
        _change(session, member, to=tier, kind="upgrade")
        member.tier_id = tier.id
        member.tier_since = now
        member.review_at = now + dt.timedelta(days=members_service.rules(session, member.merchant_id).evaluation_days)
    session.flush()


def add_growth(session: Session, member: Member, *, delta: int, reason: str, key: str, ref_type: str | None = None,
               ref_id: int | None = None) -> int:
    """Add (or take back) growth value; idempotent by `key`. Growth that reaches a higher tier
    upgrades the member on the spot (and ends a grace period); a lower total never downgrades
    here, only at the scheduled review."""
    if delta == 0:
        return 0
    exists = session.scalar(select(GrowthEntry.id).where(GrowthEntry.merchant_id == member.merchant_id,
                                                         GrowthEntry.idempotency_key == key))
    if exists:
        return 0
    now = clock.now()
    session.refresh(member, with_for_update=True)
    if delta < 0:
        delta = -min(-delta, member.growth)
        if delta == 0:
            return 0
    session.add(GrowthEntry(merchant_id=member.merchant_id, member_id=member.id, delta=delta, reason=reason[:40],
                            idempotency_key=key, ref_type=ref_type, ref_id=ref_id, created_at=now))
    member.growth += delta
    session.flush()
    if delta > 0:
        _maybe_upgrade(session, member, now)
    return delta


def _maybe_upgrade(session: Session, member: Member, now: dt.datetime) -> None:
    tiers = list_tiers(session, member.merchant_id, active_only=True)
    qualified = tier_for_growth(tiers, window_growth(session, member, now))
    current = next((t for t in tiers if t.id == member.tier_id), None) if member.tier_id else None
    evaluation = members_service.rules(session, member.merchant_id).evaluation_days
    if qualified is not None and _rank(qualified) > _rank(current):
        _change(session, member, to=qualified, kind="upgrade")
        member.tier_id = qualified.id
        member.tier_since = now
        member.review_at = now + dt.timedelta(days=evaluation)
        member.grace_until = None
    elif member.grace_until is not None and qualified is not None and current is not None \
            and _rank(qualified) >= _rank(current):
        _change(session, member, to=current, kind="kept")
        member.grace_until = None
        member.review_at = now + dt.timedelta(days=evaluation)
    session.flush()


def review(session: Session, member: Member, now: dt.datetime) -> str:
    """The scheduled review of one member's earned tier: kept when the window's growth still
    reaches it; else a grace period starts; when the grace period has passed and it still falls
    short, the member moves down to the tier the growth reaches (from now on, never backdated)."""
    r = members_service.rules(session, member.merchant_id)
    tiers = list_tiers(session, member.merchant_id, active_only=True)
    qualified = tier_for_growth(tiers, window_growth(session, member, now))
    current = next((t for t in tiers if t.id == member.tier_id), None) if member.tier_id else None
    if member.tier_id and current is None:  # its tier was switched off: move to what the growth reaches
        current = None
    if _rank(qualified) >= _rank(current) and (current is not None or qualified is None):
        if _rank(qualified) > _rank(current):
            _change(session, member, to=qualified, kind="upgrade")
            member.tier_id = qualified.id if qualified else None
            member.tier_since = now
        member.grace_until = None
        member.review_at = now + dt.timedelta(days=r.evaluation_days)
        session.flush()
        return "kept"
    if current is not None and member.grace_until is None and r.grace_days > 0:
        member.grace_until = now + dt.timedelta(days=r.grace_days)
        member.review_at = member.grace_until
        _change(session, member, to=current, kind="grace", note=clock.format_local(member.grace_until, "%Y-%m-%d"))
        session.flush()
        return "grace"
    if member.grace_until is not None and member.grace_until > now:
        member.review_at = member.grace_until
        session.flush()
        return "waiting"
    _change(session, member, to=qualified, kind="downgrade" if _rank(qualified) < _rank(current) else "upgrade")
    member.tier_id = qualified.id if qualified else None
    member.tier_since = now
    member.grace_until = None
    member.review_at = now + dt.timedelta(days=r.evaluation_days)
    session.flush()
    return "downgraded"


def review_tick(session: Session, now: dt.datetime, *, limit: int = 500) -> dict[str, int]:
    """Review members whose review date has come (each row locked and re-checked: safe to run twice)."""
    counts: dict[str, int] = {}
    ids = list(session.scalars(select(Member.id).where(Member.review_at.is_not(None), Member.review_at <= now)
                               .order_by(Member.id).limit(limit)))
    for member_id in ids:
        member = session.scalars(select(Member).where(Member.id == member_id).with_for_update()).first()
        if member is None or member.review_at is None or member.review_at > now:
            continue
        outcome = review(session, member, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    # Paid tiers that ran out.
    for member in session.scalars(select(Member).where(Member.paid_until.is_not(None), Member.paid_until <= now)
                                  .order_by(Member.id).limit(limit).with_for_update()):
        session.add(TierChange(merchant_id=member.merchant_id, member_id=member.id, from_tier_id=member.paid_tier_id,
                               to_tier_id=member.tier_id, kind="paid_ended", created_at=now))
        member.paid_tier_id = None
        member.paid_until = None
        counts["paid_ended"] = counts.get("paid_ended", 0) + 1
    session.flush()
    return counts


def birthday_tick(session: Session, now: dt.datetime, *, limit: int = 1000) -> int:
    """On a member's birthday (Shanghai date) their tier's birthday gift (points) is given, once a year."""
    from siyu.membership.service import points

    today = clock.local(now).date()  # type: ignore[union-attr]
    days = [(today.month, today.day)]
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        days.append((2, 29))  # 29 February birthdays are celebrated on the 28th in other years
    on_day = or_(*[and_(extract("month", Member.birthday) == mm, extract("day", Member.birthday) == dd)
                   for mm, dd in days])
    rows = list(session.scalars(select(Member).where(
        Member.birthday.is_not(None), on_day,
        (Member.birthday_gift_year.is_(None)) | (Member.birthday_gift_year < today.year)).order_by(Member.id).limit(limit)))
    given = 0
    for member in rows:
        tier = effective_tier(session, member, now)
        member.birthday_gift_year = today.year
        if tier is None or tier.birthday_points <= 0:
            continue
        points.earn(session, merchant_id=member.merchant_id, customer_id=member.customer_id,
                    points=tier.birthday_points, reason="birthday", key=f"member:{member.id}:birthday:{today.year}",
                    ref_type="member", ref_id=member.id)
        given += 1
    session.flush()
    return given


def effective_tier(session: Session, member: Member, now: dt.datetime | None = None) -> Tier | None:
    """The better of the earned tier and a paid tier still running."""
    now = now or clock.now()
    earned = session.get(Tier, member.tier_id) if member.tier_id else None
    if earned is not None and not earned.active:
        earned = None
    paid = session.get(Tier, member.paid_tier_id) if member.paid_tier_id and member.paid_until \
        and member.paid_until > now else None
    if paid is not None and _rank(paid) > _rank(earned):
        return paid
    return earned


def tier_history(session: Session, member: Member, limit: int = 50) -> list[TierChange]:
    return list(session.scalars(select(TierChange).where(TierChange.member_id == member.id)
                                .order_by(TierChange.id.desc()).limit(limit)))


def progress(session: Session, member: Member) -> dict[str, Any]:
    """Tier, the next one and how much growth it still needs."""
    now = clock.now()
    tiers = list_tiers(session, member.merchant_id, active_only=True)
    current = effective_tier(session, member, now)
    nxt = next_tier(tiers, current)
    growth = window_growth(session, member, now)
    needed = max(0, nxt.growth_threshold - growth) if nxt else 0
    floor = current.growth_threshold if current else 0
    span = (nxt.growth_threshold - floor) if nxt else 0
    pct = 100 if not nxt else max(0, min(100, (growth - floor) * 100 // span if span > 0 else 0))
    return {"tier": current, "next": nxt, "window_growth": growth, "needed": needed, "percent": pct,
            "grace_until": member.grace_until, "review_at": member.review_at,
            "paid": member.paid_until is not None and member.paid_until > now, "paid_until": member.paid_until}


def benefits(tier: Tier | None) -> list[str]:
    if tier is None:
        return []
    out = []
    if tier.discount_bps:
        out.append(_("Member price: {n}% off", n=f"{tier.discount_bps / 100:g}"))
    if tier.points_multiplier_bps != 10_000:
        out.append(_("Points ×{m}", m=f"{tier.points_multiplier_bps / 10_000:g}"))
    if tier.free_shipping:
        out.append(_("Free shipping"))
    if tier.birthday_points:
        out.append(_("Birthday gift: {n} points", n=tier.birthday_points))
    return out


# ---------------------------------------------------------------- pricing contributors


def _checkout_member(session: Session, ctx: pricing.PricingContext) -> tuple[Member, Tier] | None:
    cached = ctx.extra.get("membership.member")
    if cached is not None:
        return cached or None
    found: Any = False
    if ctx.customer_id is not None:
        member = members_service.member_of(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id)
        if member is not None:
            tier = effective_tier(session, member, ctx.now)
            if tier is not None:
                found = (member, tier)
    ctx.extra["membership.member"] = found
    return found or None


class TierDiscountContributor:
    """The member price: the tier's discount (bps) on the products or categories it covers."""

    name = "membership.tier_discount"
    priority = 60

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        if ctx.extra.get("points_mall_item_id"):
            return
        found = _checkout_member(session, ctx)
        if found is None:
            return
        _member, tier = found
        if tier.discount_bps <= 0:
            return
        products, categories = set(tier.discount_product_ids or []), set(tier.discount_category_ids or [])
        targets = [line for line in ctx.lines_open_to("member_discount")
                   if (not products and not categories) or line.product_id in products
                   or (line.category_id is not None and line.category_id in categories)]
        base = sum(line.amount_cents for line in targets)
        amount = apply_bps(base, tier.discount_bps)
        if amount > 0:
            ctx.add_adjustment(kind="tier_discount", label="Member price", amount_cents=-amount, source=self.name,
                               sku_ids=[line.sku_id for line in targets],
                               details={"tier_id": tier.id, "tier": tier.name, "discount_bps": tier.discount_bps})


class TierFreeShippingContributor:
    """Tiers with free shipping pay no delivery fee (after the shipping rules have set one)."""

    name = "membership.tier_free_shipping"
    priority = 85

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        if ctx.fulfilment.type != "delivery" or ctx.shipping_cents <= 0:
            return
        found = _checkout_member(session, ctx)
        if found is None or not found[1].free_shipping:
            return
        ctx.notices.append({"kind": "member_free_shipping", "message": _("Free shipping for {tier} members.",
                                                                        tier=found[1].name),
                            "waived_cents": ctx.shipping_cents})
        ctx.shipping_cents = 0
        ctx.shipping_label = "member_free"


pricing.register_contributor(TierDiscountContributor())
pricing.register_contributor(TierFreeShippingContributor())


# ---------------------------------------------------------------- paid membership


PLAN_FIELDS = ("name", "tier_id", "days", "price_cents", "active")


def list_plans(session: Session, merchant_id: int, *, active_only: bool = False) -> list[PaidMembershipPlan]:
    stmt = select(PaidMembershipPlan).where(PaidMembershipPlan.merchant_id == merchant_id)
    if active_only:
        stmt = stmt.where(PaidMembershipPlan.active.is_(True))
    return list(session.scalars(stmt.order_by(PaidMembershipPlan.price_cents, PaidMembershipPlan.id)))


def get_plan(session: Session, plan_id: int, *, merchant_id: int) -> PaidMembershipPlan:
    plan = session.get(PaidMembershipPlan, plan_id) if isinstance(plan_id, int) and 0 < plan_id < 2**62 else None
    if plan is None or plan.merchant_id != merchant_id:
        raise NotFound("This plan does not exist.", code="plan_not_found")
    return plan


def _clean_plan(session: Session, merchant_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key in PLAN_FIELDS:
        value = fields.get(key)
        if value is None:
            continue
        if key == "name":
            value = value.strip() if isinstance(value, str) else ""
            if not 1 <= len(value) <= 40:
                errors[key] = _("Enter a name of 1 to 40 characters.")
            else:
                clean[key] = value
        elif key == "active":
            clean[key] = value in (True, "1", "on", "true")
        else:
            try:
                number = int(value.strip()) if isinstance(value, str) else value
                if not isinstance(number, int) or isinstance(number, bool):
                    raise ValueError
            except ValueError:
                errors[key] = _("Enter a whole number.")
                continue
            low, high = {"tier_id": (1, 2**53), "days": (1, 3660), "price_cents": (1, 10**9)}[key]
            if not low <= number <= high:
                errors[key] = _("Enter a number from {low} to {high}.", low=low, high=high)
                continue
            if key == "tier_id":
                try:
                    get_tier(session, number, merchant_id=merchant_id)
                except NotFound:
                    errors[key] = _("Choose a tier.")
                    continue
            clean[key] = number
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return clean


def create_plan(session: Session, *, actor: Principal, **fields: Any) -> PaidMembershipPlan:
    actor.require("membership.manage")
    clean = _clean_plan(session, actor.merchant_id, fields)
    missing = {k: _("Required.") for k in ("name", "tier_id", "days", "price_cents") if k not in clean}
    if missing:
        raise ValidationFailed(details={"fields": missing})
    plan = PaidMembershipPlan(merchant_id=actor.merchant_id, active=clean.pop("active", True), **clean)
    session.add(plan)
    session.flush()
    audit.record(session, actor=actor, action="membership.plan_created", target_type="membership_paid_plan",
                 target_id=plan.id, details={"tier_id": plan.tier_id, "days": plan.days, "price_cents": plan.price_cents})
    return plan


def update_plan(session: Session, plan_id: int, *, actor: Principal, **fields: Any) -> PaidMembershipPlan:
    actor.require("membership.manage")
    plan = get_plan(session, plan_id, merchant_id=actor.merchant_id)
    for key, value in _clean_plan(session, actor.merchant_id, fields).items():
        setattr(plan, key, value)
    session.flush()
    audit.record(session, actor=actor, action="membership.plan_changed", target_type="membership_paid_plan",
                 target_id=plan.id, details={k: getattr(plan, k) for k in PLAN_FIELDS})
    return plan


def buy_plan(session: Session, *, actor: Principal, plan_id: int) -> tuple[PaidMembershipPurchase, Any]:
    """A member buys a plan: a purchase row and a service order of the plan's price, paid through
    the normal payment flow; the tier is granted when the order is paid."""
    from siyu.orders import service as orders

    member = members_service.require_own_member(session, actor=actor)
    plan = get_plan(session, plan_id, merchant_id=actor.merchant_id)
    if not plan.active:
        raise Conflict("This plan is not on sale.", code="plan_inactive")
    tier = get_tier(session, plan.tier_id, merchant_id=actor.merchant_id)
    purchase = PaidMembershipPurchase(merchant_id=actor.merchant_id, member_id=member.id, customer_id=member.customer_id,
                                      plan_id=plan.id, tier_id=tier.id, days=plan.days, price_cents=plan.price_cents,
                                      status="pending", ref_type="order", created_at=clock.now())
    session.add(purchase)
    session.flush()
    order = orders.create_service_order(
        session, actor=actor, kind="paid_membership", title=_("{tier} membership, {days} days", tier=tier.name,
                                                              days=plan.days),
        amount_cents=plan.price_cents, ref_type="paid_membership_purchase", ref_id=purchase.id,
        details={"plan_id": plan.id, "tier_id": tier.id, "days": plan.days})
    purchase.ref_id = order.id
    session.flush()
    return purchase, order


def grant_paid(session: Session, *, merchant_id: int, order_id: int) -> PaidMembershipPurchase | None:
    """The plan's order is paid: the tier runs for its days from now (or from the end of the same
    tier already bought). Once per purchase."""
    purchase = session.scalars(select(PaidMembershipPurchase).where(
        PaidMembershipPurchase.merchant_id == merchant_id, PaidMembershipPurchase.ref_type == "order",
        PaidMembershipPurchase.ref_id == order_id).with_for_update()).first()
    if purchase is None or purchase.status != "pending":
        return purchase
    member = session.scalars(select(Member).where(Member.id == purchase.member_id).with_for_update()).one()
    now = clock.now()
    start = member.paid_until if member.paid_tier_id == purchase.tier_id and member.paid_until \
        and member.paid_until > now else now
    until = start + dt.timedelta(days=purchase.days)
    session.add(TierChange(merchant_id=merchant_id, member_id=member.id, from_tier_id=member.paid_tier_id,
                           to_tier_id=purchase.tier_id, kind="paid", note=clock.format_local(until, "%Y-%m-%d"),
                           created_at=now))
    member.paid_tier_id = purchase.tier_id
    member.paid_until = until
    purchase.status = "granted"
    purchase.granted_at = now
    purchase.granted_until = until
    customers.add_timeline(session, merchant_id=merchant_id, customer_id=member.customer_id, kind="paid_membership",
                           text=_("Paid membership until {until}", until=clock.format_local(until)),
                           details={"purchase_id": purchase.id, "tier_id": purchase.tier_id})
    session.flush()
    return purchase


def refund_purchase(session: Session, purchase_id: int, *, actor: Principal, reason: str) -> PaidMembershipPurchase:
    """Staff refund a granted paid-membership purchase: its days come off the member's paid tier
    (which ends now if nothing is left), then its order is refunded in full through the provider."""
    from siyu.orders import service as orders

    actor.require("membership.adjust")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(details={"fields": {"reason": _("Say why it is refunded.")}})
    purchase = session.scalars(select(PaidMembershipPurchase).where(
        PaidMembershipPurchase.id == purchase_id, PaidMembershipPurchase.merchant_id == actor.merchant_id)
        .with_for_update()).first() if isinstance(purchase_id, int) and 0 < purchase_id < 2**62 else None
    if purchase is None:
        raise NotFound("This purchase does not exist.", code="purchase_not_found")
    members_service.get_member(session, purchase.member_id, actor=actor)  # 404 outside the staff's scope
    if purchase.status != "granted" or purchase.ref_id is None:
        raise Conflict("Only a granted purchase can be refunded.", code="purchase_not_refundable",
                       details={"status": purchase.status})
    member = session.scalars(select(Member).where(Member.id == purchase.member_id).with_for_update()).one()
    now = clock.now()
    if member.paid_tier_id == purchase.tier_id and member.paid_until is not None:
        until = member.paid_until - dt.timedelta(days=purchase.days)
        session.add(TierChange(merchant_id=member.merchant_id, member_id=member.id, from_tier_id=member.paid_tier_id,
                               to_tier_id=purchase.tier_id if until > now else member.tier_id, kind="paid_refunded",
                               note=reason[:200], created_at=now))
        if until > now:
            member.paid_until = until
        else:
            member.paid_tier_id, member.paid_until = None, None
    purchase.status = "refunded"
    session.flush()
    audit.record(session, actor=actor, action="membership.paid_refunded", target_type="membership_paid_purchase",
                 target_id=purchase.id, details={"order_id": purchase.ref_id, "reason": reason[:200]})
    orders.refund_service_order(session, purchase.ref_id, actor=actor, reason=reason[:200])
    return purchase


def cancel_purchase(session: Session, *, merchant_id: int, order_id: int) -> None:
    purchase = session.scalars(select(PaidMembershipPurchase).where(
        PaidMembershipPurchase.merchant_id == merchant_id, PaidMembershipPurchase.ref_type == "order",
        PaidMembershipPurchase.ref_id == order_id).with_for_update()).first()
    if purchase is not None and purchase.status == "pending":
        purchase.status = "cancelled"
        session.flush()


def purchases_of(session: Session, member: Member, limit: int = 20) -> list[PaidMembershipPurchase]:
    return list(session.scalars(select(PaidMembershipPurchase).where(PaidMembershipPurchase.member_id == member.id)
                                .order_by(PaidMembershipPurchase.id.desc()).limit(limit)))


@dataclasses.dataclass(frozen=True)
class TierCount:
    tier_id: int | None
    members: int


def members_per_tier(session: Session, merchant_id: int) -> dict[int | None, int]:
    rows = session.execute(select(Member.tier_id, func.count()).where(Member.merchant_id == merchant_id)
                           .group_by(Member.tier_id))
    return {tier_id: int(n) for tier_id, n in rows}
