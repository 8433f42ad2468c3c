"""membership: the merchant's membership rules, member cards (activation, card code, counter
lookup), daily check-in, profile completion and the customer profile (new vs returning, visits)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import random
from typing import Any

import segno
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.attribution.service import funnel
from siyu.core import audit, clock
from siyu.core.auth import Principal
from siyu.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.pagination import Page, paginate
from siyu.customers import service as customers
from siyu.membership.models.members import Member, MembershipConfig

# ---------------------------------------------------------------- rules


@dataclasses.dataclass(frozen=True)
class Rules:
    """Points and tier rules of a merchant. Points are whole numbers; `redeem_points_per_yuan`
    points are worth ¥1 at checkout, up to `redeem_cap_bps` of the order."""

    points_per_yuan: int = 1
    growth_per_yuan: int = 1
    redeem_points_per_yuan: int = 100
    redeem_cap_bps: int = 5000
    # Points earned in year Y expire at the end of year Y + expiry_years (0 = never).
    expiry_years: int = 1
    checkin_points: int = 5
    checkin_growth: int = 1
    profile_points: int = 50
    profile_growth: int = 10
    first_purchase_points: int = 100
    # Tiers: growth within the last `evaluation_days` keeps a tier; short of it, `grace_days` to catch up.
    evaluation_days: int = 365
    grace_days: int = 30

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


RULE_LIMITS: dict[str, tuple[int, int]] = {
    "points_per_yuan": (0, 1000),
    "growth_per_yuan": (0, 1000),
    "redeem_points_per_yuan": (1, 100_000),
    "redeem_cap_bps": (0, 10_000),
    "expiry_years": (0, 10),
    "checkin_points": (0, 10_000),
    "checkin_growth": (0, 10_000),
    "profile_points": (0, 100_000),
    "profile_growth": (0, 100_000),
    "first_purchase_points": (0, 100_000),
    "evaluation_days": (1, 3650),
    "grace_days": (0, 365),
}


def rules(session: Session, merchant_id: int) -> Rules:
    row = session.scalars(select(MembershipConfig).where(MembershipConfig.merchant_id == merchant_id)).first()
    data = dict(row.rules or {}) if row else {}
    values: dict[str, int] = {}
    for key, (low, high) in RULE_LIMITS.items():
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            values[key] = value
    return Rules(**values)


def clean_rules(changes: dict[str, Any]) -> dict[str, int]:
    """Check rule values (ints or typed text); ValidationFailed names every bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, int] = {}
    for key, value in changes.items():
        if key not in RULE_LIMITS or value is None or value == "":
            continue
        low, high = RULE_LIMITS[key]
        try:
            number = int(value.strip()) if isinstance(value, str) else value
            if not isinstance(number, int) or isinstance(number, bool):
                raise ValueError
        except ValueError:
            errors[key] = _("Enter a whole number.")
            continue
        if not low <= number <= high:
            errors[key] = _("Enter a number from {low} to {high}.", low=low, high=high)
            continue
        clean[key] = number
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return clean


def update_rules(session: Session, *, actor: Principal, **changes: Any) -> Rules:
    """Brand admins change the points and tier rules; the change is audited."""
    actor.require("membership.manage")
    clean = clean_rules(changes)
    row = session.scalars(select(MembershipConfig).where(MembershipConfig.merchant_id == actor.merchant_id)
                          .with_for_update()).first()
    if row is None:
        row = MembershipConfig(merchant_id=actor.merchant_id, rules={})
        session.add(row)
    before = dict(row.rules or {})
    row.rules = {**before, **clean}
    row.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="membership.rules_changed", target_type="membership_config",
                 target_id=row.id, details={"before": before, "after": row.rules})
    return rules(session, actor.merchant_id)


# ---------------------------------------------------------------- cards


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def card_number(merchant_id: int, customer_id: int, attempt: int = 0) -> str:
    """A 12-digit card number: "8", 10 digits derived from the customer (not sequential, stable)
    and a Luhn check digit, so a mistyped number is caught at the counter."""
    body = "8" + f"{random.Random(f'{merchant_id}:{customer_id}:{attempt}').randrange(10**10):010d}"
    return body + _luhn_digit(body)


def valid_card_number(text: str) -> bool:
    return len(text) == 12 and text.isdigit() and _luhn_digit(text[:-1]) == text[-1]


def member_of(session: Session, *, merchant_id: int, customer_id: int) -> Member | None:
    return session.scalars(_member_of(), {"merchant_id": merchant_id, "customer_id": customer_id}).first()


@functools.cache
def _member_of() -> Any:
    # Built once (every checkout asks): the ids as parameters.
    return select(Member).where(Member.merchant_id == bindparam("merchant_id"),
                                Member.customer_id == bindparam("customer_id"))


def members_of(session: Session, *, merchant_id: int, customer_ids: list[int]) -> dict[int, Member]:
    if not customer_ids:
        return {}
    rows = session.scalars(select(Member).where(Member.merchant_id == merchant_id,
                                                Member.customer_id.in_(customer_ids)))
    return {m.customer_id: m for m in rows}


def activate(session: Session, *, actor: Principal, phone: str, birthday: str | dt.date | None = None,
             name: str = "", gender: str = "", customer_id: int | None = None) -> Member:
    """Activate the member card of the signed-in customer (or, for staff, of `customer_id`): the
    phone is required and goes to the customer's profile; birthday and name are optional. A second
    activation returns the existing card. The lowest tier applies at once."""
    from siyu.membership.service import tiers

    if actor.kind == "customer":
        customer = customers.own_customer(session, actor=actor)
    elif actor.kind == "staff":
        actor.require("customers.manage")
        customer = customers.get_customer(session, customer_id or 0, actor=actor)
    else:
        raise PermissionDenied()
    existing = member_of(session, merchant_id=actor.merchant_id, customer_id=customer.id)
    if existing is not None:
        return existing
    profile = customers.clean_profile({"phone": phone, "birthday": birthday, "name": name or None,
                                       "gender": gender or None},
                                      allowed=("phone", "birthday", "name", "gender"))
    if not profile.get("phone"):
        raise ValidationFailed(details={"fields": {"phone": _("Enter a valid phone number.")}})
    changes = {k: v for k, v in profile.items() if v not in (None, "")}
    system = Principal(merchant_id=actor.merchant_id, kind="system", subject_id=None, name="membership")
    customers.update_profile(session, customer.id, actor=system, **changes)
    now = clock.now()
    member = None
    for attempt in range(5):
        try:
            with session.begin_nested():
                member = Member(merchant_id=actor.merchant_id, customer_id=customer.id,
                                card_no=card_number(actor.merchant_id, customer.id, attempt),
                                phone=changes["phone"], name=changes.get("name", customer.name or ""),
                                birthday=changes.get("birthday", customer.birthday), growth=0, activated_at=now)
                session.add(member)
            break
        except IntegrityError:
            member = None
            again = member_of(session, merchant_id=actor.merchant_id, customer_id=customer.id)
            if again is not None:  # a racing activation of the same customer won
                return again
    if member is None:
        raise Conflict("No card number is free; try again.", code="card_number_taken")
    tiers.assign_initial_tier(session, member, now=now)
    customers.add_timeline(session, merchant_id=actor.merchant_id, customer_id=customer.id, kind="member_activated",
                           text=_("Member card activated"), details={"card_no": member.card_no}, actor=actor)
    reward_profile_if_complete(session, member)
    return member


def profile_complete(member: Member) -> bool:
    return bool(member.phone and member.birthday and member.name)


def reward_profile_if_complete(session: Session, member: Member) -> int:
    """Profile completion (phone, name, birthday) earns points and growth once."""
    from siyu.membership.service import points, tiers

    if member.profile_rewarded or not profile_complete(member):
        return 0
    r = rules(session, member.merchant_id)
    member.profile_rewarded = True
    points.earn(session, merchant_id=member.merchant_id, customer_id=member.customer_id, points=r.profile_points,
                reason="profile", key=f"member:{member.id}:profile", ref_type="member", ref_id=member.id,)
    tiers.add_growth(session, member, delta=r.profile_growth, reason="profile", key=f"member:{member.id}:profile")
    session.flush()
    return r.profile_points


def update_member_profile(session: Session, *, actor: Principal, name: str | None = None,
                          birthday: str | dt.date | None = None) -> Member:
    """The member completes their card's profile (name, birthday); completion is rewarded once."""
    member = require_own_member(session, actor=actor)
    clean = customers.clean_profile({"name": name, "birthday": birthday}, allowed=("name", "birthday"))
    if "name" in clean:
        member.name = clean["name"]
    if clean.get("birthday") is not None:
        member.birthday = clean["birthday"]
    session.flush()
    customers.update_own_profile(session, actor=actor, **{k: v for k, v in clean.items() if v not in (None, "")})
    reward_profile_if_complete(session, member)
    return member


def own_member(session: Session, *, actor: Principal) -> Member | None:
    if actor.kind != "customer" or actor.customer_id is None:
        raise PermissionDenied()
    return member_of(session, merchant_id=actor.merchant_id, customer_id=actor.customer_id)


def require_own_member(session: Session, *, actor: Principal) -> Member:
    member = own_member(session, actor=actor)
    if member is None:
        raise Conflict("Activate your member card first.", code="not_a_member")
    return member


def get_member(session: Session, member_id: int, *, actor: Principal) -> Member:
    """A member by id, within the staff member's customer scope (else 404)."""
    if not isinstance(member_id, int) or member_id <= 0 or member_id > 2**62:
        raise NotFound()
    member = session.get(Member, member_id)
    if member is None or member.merchant_id != actor.merchant_id:
        raise NotFound()
    customers.get_customer(session, member.customer_id, actor=actor)  # 404 outside the role's scope
    return member


def lookup(session: Session, *, actor: Principal, code: str) -> Member:
    """Counter lookup: the card number (typed or scanned from the member's QR code) or the phone.
    404 `member_not_found` when nothing matches within the staff member's scope."""
    if not actor.is_staff and actor.kind != "system":
        raise PermissionDenied()
    text = "".join(ch for ch in (code or "") if ch.isdigit() or ch == "+")[:20]
    if not text:
        raise NotFound("No member has this card number or phone.", code="member_not_found")
    if text.startswith("+86"):
        text = text[3:]
    member = session.scalars(select(Member).where(
        Member.merchant_id == actor.merchant_id, or_(Member.card_no == text, Member.phone == text))).first()
    if member is None:
        raise NotFound("No member has this card number or phone.", code="member_not_found", details={"code": text})
    try:
        customers.get_customer(session, member.customer_id, actor=actor)
    except NotFound as exc:
        raise NotFound("No member has this card number or phone.", code="member_not_found",
                       details={"code": text}) from exc
    return member


def list_members(session: Session, *, actor: Principal, q: str = "", tier_id: int | None = None,
                 cursor: str | None = None, limit: int | None = None) -> Page[Member]:
    """Members, newest first, within the staff member's customer scope; `q` matches card, phone or name."""
    if not actor.is_staff and actor.kind != "system":
        raise PermissionDenied()
    stmt = select(Member).where(Member.merchant_id == actor.merchant_id)
    if q:
        like = f"%{q.strip()[:40]}%"
        stmt = stmt.where(or_(Member.card_no.like(like), Member.phone.like(like), Member.name.like(like)))
    if tier_id:
        stmt = stmt.where(Member.tier_id == tier_id)
    page = paginate(session, stmt, Member.id, cursor=cursor, limit=limit)
    if actor.kind == "system" or actor.can("membership.manage"):
        return page
    allowed = _visible_ids(session, actor, [m.customer_id for m in page.items])
    return Page(items=[m for m in page.items if m.customer_id in allowed], next_cursor=page.next_cursor)


def _visible_ids(session: Session, actor: Principal, customer_ids: list[int]) -> set[int]:
    """The customers among these that the staff member's role scope shows."""
    seen = set()
    for cid in customer_ids:
        try:
            customers.get_customer(session, cid, actor=actor)
            seen.add(cid)
        except NotFound:
            continue
    return seen


def count_members(session: Session, merchant_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Member).where(Member.merchant_id == merchant_id)) or 0)


def card_qr_svg(member: Member, *, scale: int = 5) -> str:
    """The card's QR code (its card number) as inline SVG, for staff to scan at the counter."""
    buffer = io.BytesIO()
    segno.make(member.card_no, error="m").save(buffer, kind="svg", scale=scale, border=2, xmldecl=False,
                                               svgns=True, omitsize=False)
    return buffer.getvalue().decode()


def card_qr_png(member: Member, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make(member.card_no, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


# ---------------------------------------------------------------- check-in


def check_in(session: Session, *, actor: Principal) -> dict[str, Any]:
    """Daily check-in (Asia/Shanghai days): points and growth once a day; the streak counts
    consecutive days. A second check-in the same day answers 409 `already_checked_in`."""
    from siyu.membership.service import points, tiers

    member = require_own_member(session, actor=actor)
    session.refresh(member, with_for_update=True)
    today = clock.today_local()
    if member.last_checkin_on == today:
        raise Conflict("You have already checked in today.", code="already_checked_in")
    r = rules(session, member.merchant_id)
    member.checkin_streak = member.checkin_streak + 1 if member.last_checkin_on == today - dt.timedelta(days=1) else 1
    member.last_checkin_on = today
    key = f"member:{member.id}:checkin:{today.isoformat()}"
    points.earn(session, merchant_id=member.merchant_id, customer_id=member.customer_id, points=r.checkin_points,
                reason="checkin", key=key, ref_type="member", ref_id=member.id)
    tiers.add_growth(session, member, delta=r.checkin_growth, reason="checkin", key=key)
    session.flush()
    return {"points": r.checkin_points, "growth": r.checkin_growth, "streak": member.checkin_streak,
            "day": today.isoformat()}


# ---------------------------------------------------------------- customer profile


def customer_profile(session: Session, *, merchant_id: int, customer_id: int) -> dict[str, Any]:
    """New vs returning, visit count and last visit: from attribution's funnel events when that
    domain records them, else from the customer's paid orders."""
    actor = Principal(merchant_id=merchant_id, kind="system", subject_id=None, name="membership")
    customer = customers.get_customer(session, customer_id, actor=actor)
    visits, last_visit, source = _visits_from_attribution(session, merchant_id, customer_id)
    if visits is None:
        visits, last_visit, source = customer.paid_orders, customer.last_purchase_at, "orders"
    return {"returning": customer.paid_orders >= 2, "paid_orders": customer.paid_orders, "visits": visits,
            "last_visit_at": last_visit, "visits_source": source, "first_purchase_at": customer.first_purchase_at}


def _visits_from_attribution(session: Session, merchant_id: int, customer_id: int) -> tuple[Any, Any, str]:
    stats = funnel.visit_stats(session, merchant_id=merchant_id, customer_id=customer_id)
    if stats is None:
        return None, None, ""
    return stats["visits"], stats["last_visit_at"], "attribution"


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> None:
    """A customer merged into another: the card moves to the target (unless it has its own, then the
    source's growth is added to it), and every open points lot moves with its expiry date."""
    from siyu.membership.service import points, tiers

    source = member_of(session, merchant_id=merchant_id, customer_id=source_id)
    target = member_of(session, merchant_id=merchant_id, customer_id=target_id)
    if source is not None and target is None:
        source.customer_id = target_id
        session.flush()
    elif source is not None and target is not None and source.growth > 0:
        tiers.add_growth(session, target, delta=source.growth, reason="merge", key=f"member:{source.id}:merged")
    points.move_lots(session, merchant_id=merchant_id, source_id=source_id, target_id=target_id)
