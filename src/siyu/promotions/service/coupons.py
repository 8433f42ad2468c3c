"""promotions: coupon templates, claiming, my coupons, the coupon contributors and the best-coupon suggestion.

Rules:
- A template is claimable while `active`, inside its claim window, through a channel it offers.
- Claiming is race-safe: the per-customer limit by a conditional UPDATE of the (template, customer)
  counter row (`claimed < limit`), then the stock by one conditional UPDATE of the template row
  (`claimed < total_stock`), taken last; both in a SAVEPOINT so a refusal leaves no trace.
- Checkout (stacking): campaign prices (20–23) → member tier discount (60) → `promotions.coupon` (70):
  one discount coupon per order, on the lines open to coupons (`ctx.lines_open_to("coupons")`) in its
  scope, its threshold measured on those lines after the member discount → shipping (80) → member free
  shipping (85) → `promotions.free_shipping_coupon` (87): one free-shipping coupon per order → points
  (90) → stored value (95). A chosen coupon that cannot be used is refused with a stable code, never
  dropped. Placing the order marks it used by one conditional UPDATE (available → used), so one
  coupon never pays two orders.
- A cancelled order gives its coupons back (available while still valid, else expired); a wholly
  refunded order gives back the ones still valid.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, Role
from siyu.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.pagination import Page, paginate
from siyu.customers import service as customers
from siyu.db import upsert_insert
from siyu.promotions.models.coupons import Coupon, CouponClaimCount, CouponTemplate
from siyu.promotions.service.common import require_manager
from siyu.promotions.service.coupon_pricing import (  # noqa: F401 (re-exported: the pricing half of coupons)
    EXTRA_KEY,
    REASON_MESSAGES,
    CouponContributor,
    CouponUnusable,
    Evaluation,
    FreeShippingCouponContributor,
    _candidates,
    _choice,
    _covers,
    _load_chosen,
    _pct_off,
    _refuse,
    _zhe,
    applicable,
    describe,
    evaluate,
    use_coupon,
)
from siyu.promotions.states.coupons import (
    LIVE_TEMPLATE_STATUSES,
    TEMPLATE_TRANSITIONS,
    CouponStatus,
    TemplateStatus,
    assert_coupon_transition,
    assert_template_transition,
)

KINDS = ("fixed", "threshold", "percent", "free_shipping", "exchange")
SCOPES = ("all", "products", "categories")
VALIDITIES = ("fixed", "relative")
CHANNELS = ("centre", "guide", "payment", "campaign", "split", "segment")
KIND_LABELS = {"fixed": "No-threshold coupon", "threshold": "Spend-and-save coupon", "percent": "Discount coupon",
               "free_shipping": "Free-shipping coupon", "exchange": "Exchange coupon"}
CHANNEL_LABELS = {"centre": "Coupon centre", "guide": "Sent by a guide", "payment": "After payment",
                  "campaign": "Campaign", "split": "Split coupon", "segment": "Customer segment"}
MAX_BULK = 5000


class CouponSoldOut(Conflict):
    code = "coupon_sold_out"
    message = "This coupon has all been claimed."


class CouponLimitReached(Conflict):
    code = "coupon_limit_reached"
    message = "You already have as many of this coupon as one customer may claim."


class CouponNotClaimable(Conflict):
    code = "coupon_not_claimable"
    message = "This coupon cannot be claimed now."


# ==================================================================== permissions and lookups




def _valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**53


def get_template(session: Session, template_id: int, *, merchant_id: int, lock: bool = False) -> CouponTemplate:
    """One template of the merchant, else 404 `coupon_template_not_found`."""
    template = session.get(CouponTemplate, template_id, with_for_update=lock) if _valid_id(template_id) else None
    if template is None or template.merchant_id != merchant_id:
        raise NotFound("This coupon does not exist.", code="coupon_template_not_found")
    return template


def get_coupon(session: Session, coupon_id: int, *, merchant_id: int, customer_id: int | None = None) -> Coupon:
    coupon = session.get(Coupon, coupon_id) if _valid_id(coupon_id) else None
    if coupon is None or coupon.merchant_id != merchant_id or (customer_id is not None
                                                               and coupon.customer_id != customer_id):
        raise NotFound("This coupon does not exist.", code="coupon_not_found")
    return coupon


def templates_by_id(session: Session, merchant_id: int, ids: list[int]) -> dict[int, CouponTemplate]:
    ids = sorted({i for i in ids if _valid_id(i)})
    if not ids:
        return {}
    rows = session.scalars(select(CouponTemplate).where(CouponTemplate.merchant_id == merchant_id,
                                                        CouponTemplate.id.in_(ids)))
    return {t.id: t for t in rows}


# ==================================================================== templates (staff)


TEMPLATE_FIELDS = ("name", "description", "kind", "amount_cents", "threshold_cents", "percent_bps", "cap_cents",
                   "exchange_sku_id", "exchange_product_id", "scope", "scope_product_ids", "scope_category_ids",
                   "excluded_product_ids", "validity", "starts_at", "ends_at", "valid_days", "total_stock",
                   "per_customer_limit", "channels")


def _ids(value: Any, field: str, errors: dict[str, str]) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or len(value) > 500 or not all(_valid_id(v) for v in value):
        errors[field] = _("Give up to 500 ids.")
        return []
    return sorted(set(value))


def clean_template(fields: dict[str, Any], *, current: CouponTemplate | None = None) -> dict[str, Any]:
    """Check a template's fields together (kinds need their amounts, fixed validity its dates …);
    422 with the failing fields in `details.fields`."""
    base: dict[str, Any] = {k: getattr(current, k) for k in TEMPLATE_FIELDS} if current is not None else {}
    data = {**base, **{k: v for k, v in fields.items() if k in TEMPLATE_FIELDS}}
    errors: dict[str, str] = {}
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 60:
        errors["name"] = _("Give the coupon a name (up to 60 characters).")
    description = str(data.get("description") or "").strip()[:300]
    kind = data.get("kind")
    if kind not in KINDS:
        errors["kind"] = _("Choose a kind of coupon.")

    def count(key: str, *, low: int = 0, high: int = 10**9, required: bool = False) -> int | None:
        value = data.get(key)
        if value is None or value == "" or (value == 0 and not required):
            if required:
                errors[key] = _("Required.")
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errors[key] = _("Enter a whole number from {low} to {high}.", low=low, high=high)
            return None
        return value

    amount = count("amount_cents", low=1, required=kind in ("fixed", "threshold")) or 0
    threshold = count("threshold_cents", low=1 if kind == "threshold" else 0, required=kind == "threshold") or 0
    percent = count("percent_bps", low=1, high=9900, required=kind == "percent") or 0
    cap = count("cap_cents", low=1)
    if kind == "threshold" and threshold and amount and amount >= threshold:
        errors["amount_cents"] = _("The amount off must be below the threshold.")
    exchange_sku = data.get("exchange_sku_id")
    exchange_product = data.get("exchange_product_id")
    if kind == "exchange":
        if not (_valid_id(exchange_sku) or _valid_id(exchange_product)):
            errors["exchange_sku_id"] = _("Choose the SKU or product this coupon exchanges.")
    else:
        exchange_sku = exchange_product = None
    scope = data.get("scope") or "all"
    if scope not in SCOPES:
        errors["scope"] = _("Choose what the coupon covers.")
    products = _ids(data.get("scope_product_ids"), "scope_product_ids", errors)
    categories = _ids(data.get("scope_category_ids"), "scope_category_ids", errors)
    excluded = _ids(data.get("excluded_product_ids"), "excluded_product_ids", errors)
    if scope == "products" and not products and "scope_product_ids" not in errors:
        errors["scope_product_ids"] = _("Choose the products this coupon covers.")
    if scope == "categories" and not categories and "scope_category_ids" not in errors:
        errors["scope_category_ids"] = _("Choose the categories this coupon covers.")
    validity = data.get("validity") or "fixed"
    if validity not in VALIDITIES:
        errors["validity"] = _("Choose how long coupons stay valid.")
    starts_at, ends_at = data.get("starts_at"), data.get("ends_at")
    for key, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
            errors[key] = _("Enter a date and time.")
    valid_days = count("valid_days", low=1, high=3650, required=validity == "relative")
    if validity == "fixed" and ends_at is None and "ends_at" not in errors:
        errors["ends_at"] = _("Fixed dates need an end.")
    if (isinstance(starts_at, dt.datetime) and isinstance(ends_at, dt.datetime) and "starts_at" not in errors
            and "ends_at" not in errors and ends_at <= starts_at):
        errors["ends_at"] = _("The end must come after the start.")
    total_stock = count("total_stock", low=1, high=10**8)
    limit = count("per_customer_limit", low=1, high=100) or 1
    channels = data.get("channels") or ["centre"]
    if not isinstance(channels, list | tuple) or not channels or any(c not in CHANNELS for c in channels):
        errors["channels"] = _("Choose at least one way to hand the coupon out.")
        channels = []
    if current is not None and total_stock is not None and total_stock < current.claimed:
        errors["total_stock"] = _("Already {n} claimed: the stock cannot be lower.", n=current.claimed)
    if errors:
        raise ValidationFailed(details={"fields": errors})
    return {"name": name, "description": description, "kind": kind, "amount_cents": amount,
            "threshold_cents": threshold, "percent_bps": percent if kind == "percent" else 0,
            "cap_cents": cap if kind == "percent" else None, "exchange_sku_id": exchange_sku,
            "exchange_product_id": exchange_product, "scope": scope,
            "scope_product_ids": products if scope == "products" else [],
            "scope_category_ids": categories if scope == "categories" else [], "excluded_product_ids": excluded,
            "validity": validity, "starts_at": starts_at, "ends_at": ends_at,
            "valid_days": valid_days if validity == "relative" else None, "total_stock": total_stock,
            "per_customer_limit": limit, "channels": [c for c in CHANNELS if c in set(channels)]}


def create_template(session: Session, *, actor: Principal, publish: bool = False, **fields: Any) -> CouponTemplate:
    """A new template, a draft unless `publish` (then scheduled or active by its start)."""
    require_manager(actor)
    clean = clean_template(fields)
    now = clock.now()
    template = CouponTemplate(merchant_id=actor.merchant_id, status=TemplateStatus.DRAFT.value, claimed=0,
                              created_at=now, updated_at=now, **clean)
    session.add(template)
    session.flush()
    if publish:
        publish_template(session, actor=actor, template_id=template.id)
    return template


def update_template(session: Session, *, actor: Principal, template_id: int, **fields: Any) -> CouponTemplate:
    """Change a template that has not ended. Once coupons are out, what they are worth stays (kind,
    amounts, validity): only the name, description, stock, limit, channels and dates may change."""
    require_manager(actor)
    template = get_template(session, template_id, merchant_id=actor.merchant_id)
    if template.status == TemplateStatus.ENDED.value:
        raise Conflict("This coupon campaign has ended.", code="coupon_template_ended")
    if template.claimed > 0:
        frozen = {"kind", "amount_cents", "threshold_cents", "percent_bps", "cap_cents", "exchange_sku_id",
                  "exchange_product_id", "validity", "valid_days"}
        changed = sorted(k for k in frozen if k in fields and fields[k] != getattr(template, k))
        if changed:
            raise Conflict("Coupons of this campaign are out: what they are worth can no longer change.",
                           code="coupon_template_in_use", details={"fields": changed})
    clean = clean_template(fields, current=template)
    for key, value in clean.items():
        setattr(template, key, value)
    template.updated_at = clock.now()
    session.flush()
    return template


def _move(template: CouponTemplate, new: TemplateStatus) -> None:
    assert_template_transition(template.status, new.value)
    template.status = new.value
    template.updated_at = clock.now()


def _set_status(session: Session, actor: Principal, template_id: int, new: TemplateStatus | None) -> CouponTemplate:
    """Move the merchant's template to `new`, or (None) to active — scheduled while its start is ahead —
    refusing when its end has passed."""
    require_manager(actor)
    template = get_template(session, template_id, merchant_id=actor.merchant_id, lock=True)
    if new is None:
        now = clock.now()
        if template.ends_at is not None and template.ends_at <= now:
            raise Conflict("This campaign's end has passed; change its dates first.", code="coupon_template_over")
        new = TemplateStatus.SCHEDULED if template.starts_at and template.starts_at > now else TemplateStatus.ACTIVE
    _move(template, new)
    session.flush()
    return template


def publish_template(session: Session, *, actor: Principal, template_id: int) -> CouponTemplate:
    """Draft → active (or scheduled when it starts later)."""
    return _set_status(session, actor, template_id, None)


def pause_template(session: Session, *, actor: Principal, template_id: int) -> CouponTemplate:
    return _set_status(session, actor, template_id, TemplateStatus.PAUSED)


def resume_template(session: Session, *, actor: Principal, template_id: int) -> CouponTemplate:
    return _set_status(session, actor, template_id, None)


def end_template(session: Session, *, actor: Principal, template_id: int) -> CouponTemplate:
    """Stop claiming for good; coupons already claimed stay usable until they expire."""
    return _set_status(session, actor, template_id, TemplateStatus.ENDED)


def list_templates(session: Session, *, actor: Principal, status: str | None = None, cursor: str | None = None,
                   limit: int | None = None) -> Page[CouponTemplate]:
    if not actor.is_staff and actor.kind != "system":
        raise PermissionDenied()
    stmt = select(CouponTemplate).where(CouponTemplate.merchant_id == actor.merchant_id)
    if status:
        stmt = stmt.where(CouponTemplate.status == status)
    return paginate(session, stmt, CouponTemplate.id, cursor=cursor, limit=limit)


def running_count(session: Session, *, merchant_id: int) -> int:
    """Scheduled and running coupon campaigns (the marketing overview's figure)."""
    return int(session.scalar(select(func.count()).select_from(CouponTemplate).where(
        CouponTemplate.merchant_id == merchant_id,
        CouponTemplate.status.in_([s.value for s in LIVE_TEMPLATE_STATUSES]))) or 0)


def figures(session: Session, *, merchant_id: int, template_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per template: coupons used, the GMV of the orders that used them, and what they took off."""
    ids = [i for i in template_ids if _valid_id(i)]
    out = {i: {"used": 0, "gmv_cents": 0, "discount_cents": 0, "available": 0, "expired": 0} for i in ids}
    if not ids:
        return out
    rows = session.execute(select(Coupon.template_id, Coupon.status, func.count(),
                                  func.coalesce(func.sum(Coupon.order_total_cents), 0),
                                  func.coalesce(func.sum(Coupon.discount_cents), 0))
                           .where(Coupon.merchant_id == merchant_id, Coupon.template_id.in_(ids))
                           .group_by(Coupon.template_id, Coupon.status))
    for template_id, status, n, gmv, discount in rows:
        entry = out[template_id]
        if status == CouponStatus.USED.value:
            entry.update(used=int(n), gmv_cents=int(gmv), discount_cents=int(discount))
        elif status in ("available", "expired"):
            entry[status] = int(n)
    return out


def template_summary(session: Session, *, merchant_id: int, template_id: int) -> dict[str, Any]:
    """The template's essentials and live figures: claimed, remaining, used, GMV of orders using it."""
    template = get_template(session, template_id, merchant_id=merchant_id)
    return summary_of(template, figures(session, merchant_id=merchant_id, template_ids=[template.id])[template.id])


def summary_of(template: CouponTemplate, fig: dict[str, int]) -> dict[str, Any]:
    remaining = None if template.total_stock is None else max(0, template.total_stock - template.claimed)
    return {"id": template.id, "name": template.name, "kind": template.kind, "label": describe(template),
            "status": template.status, "amount_cents": template.amount_cents,
            "threshold_cents": template.threshold_cents, "percent_bps": template.percent_bps,
            "cap_cents": template.cap_cents, "total_stock": template.total_stock, "claimed": template.claimed,
            "remaining": remaining, "used": fig["used"], "gmv_cents": fig["gmv_cents"],
            "discount_cents": fig["discount_cents"], "available": fig["available"], "expired": fig["expired"]}


# ==================================================================== claiming


def _claim_window_open(template: CouponTemplate, now: dt.datetime) -> bool:
    if template.starts_at is not None and now < template.starts_at:
        return False
    return template.ends_at is None or now < template.ends_at


def _insert_ignore(session: Session) -> Any:
    return upsert_insert(session)


def issue_coupon(session: Session, *, merchant_id: int, template_id: int, customer_id: int, channel: str,
                 source_ref: str | None = None, amount_cents: int | None = None,
                 actor: Principal | None = None) -> Coupon:
    """Give a customer one coupon of a template through `channel`. Race-safe: the per-customer limit
    by a conditional UPDATE of the (template, customer) counter, then the stock by one conditional
    UPDATE of the template row (the hot row, taken last). In a SAVEPOINT: a refusal (409
    `coupon_not_claimable`, `coupon_limit_reached`, `coupon_sold_out`) leaves nothing behind."""
    template = get_template(session, template_id, merchant_id=merchant_id)
    now = clock.now()
    if (channel not in CHANNELS or channel not in (template.channels or [])
            or template.status != TemplateStatus.ACTIVE.value or not _claim_window_open(template, now)):
        raise CouponNotClaimable(details={"template_id": template.id, "status": template.status})
    if template.total_stock is not None and template.claimed >= template.total_stock:
        raise CouponSoldOut(details={"template_id": template.id})
    if amount_cents is not None and not (isinstance(amount_cents, int) and 0 < amount_cents <= 10**9):
        raise ValidationFailed(details={"fields": {"amount_cents": _("Enter a positive amount.")}})
    if template.validity == "relative":
        valid_from, valid_until = now, now + dt.timedelta(days=template.valid_days or 1)
    else:
        valid_from = min(template.starts_at or now, now)
        valid_until = template.ends_at or now
    with session.begin_nested():
        insert = _insert_ignore(session)
        session.execute(insert(CouponClaimCount).values(merchant_id=merchant_id, template_id=template.id,
                                                        customer_id=customer_id, claimed=0)
                        .on_conflict_do_nothing(index_elements=["template_id", "customer_id"]))
        counted = session.execute(
            update(CouponClaimCount)
            .where(CouponClaimCount.template_id == template.id, CouponClaimCount.customer_id == customer_id,
                   CouponClaimCount.claimed < template.per_customer_limit)
            .values(claimed=CouponClaimCount.claimed + 1).execution_options(synchronize_session=False))
        if counted.rowcount != 1:
            raise CouponLimitReached(details={"template_id": template.id, "limit": template.per_customer_limit})
        taken = session.execute(
            update(CouponTemplate)
            .where(CouponTemplate.id == template.id, CouponTemplate.status == TemplateStatus.ACTIVE.value,
                   or_(CouponTemplate.total_stock.is_(None), CouponTemplate.claimed < CouponTemplate.total_stock))
            .values(claimed=CouponTemplate.claimed + 1).execution_options(synchronize_session=False))
        if taken.rowcount != 1:
            raise CouponSoldOut(details={"template_id": template.id})
        coupon = Coupon(merchant_id=merchant_id, template_id=template.id, customer_id=customer_id,
                        status=CouponStatus.AVAILABLE.value, channel=channel,
                        source_ref=(source_ref or None) and str(source_ref)[:80], amount_cents=amount_cents,
                        valid_from=valid_from, valid_until=valid_until, claimed_at=now,
                        issued_by=actor.staff_id if actor is not None else None, updated_at=now)
        session.add(coupon)
        session.flush()
    session.expire(template, ["claimed"])
    return coupon


def claim(session: Session, *, actor: Principal, template_id: int) -> Coupon:
    """The signed-in customer claims a coupon in the coupon centre."""
    if actor.customer_id is None:
        raise PermissionDenied()
    return issue_coupon(session, merchant_id=actor.merchant_id, template_id=template_id,
                        customer_id=actor.customer_id, channel="centre", actor=actor)


def issue_to_customers(session: Session, *, actor: Principal, template_id: int, customer_ids: list[int],
                       channel: str = "guide", source_ref: str | None = None) -> dict[str, Any]:
    """Staff send one coupon each to customers: a guide only to their own customers (others count as
    `not_found`). Answers how many were issued and why the others were not."""
    if not actor.is_staff and actor.kind != "system":
        raise PermissionDenied()
    if actor.role == Role.GUIDE and channel != "guide":
        raise PermissionDenied()
    if channel not in ("guide", "segment", "campaign"):
        raise ValidationFailed(details={"fields": {"channel": _("Choose a channel.")}})
    template = get_template(session, template_id, merchant_id=actor.merchant_id)
    ids = list(dict.fromkeys(i for i in customer_ids if _valid_id(i)))[:MAX_BULK]
    result: dict[str, Any] = {"issued": 0, "coupon_ids": [], "refused": {}}
    for customer_id in ids:
        try:
            customers.get_customer(session, customer_id, actor=actor)
            coupon = issue_coupon(session, merchant_id=actor.merchant_id, template_id=template.id,
                                  customer_id=customer_id, channel=channel, source_ref=source_ref, actor=actor)
        except (NotFound, Conflict) as exc:
            result["refused"][exc.code] = result["refused"].get(exc.code, 0) + 1
            if isinstance(exc, CouponSoldOut | CouponNotClaimable):
                result["refused"][exc.code] += len(ids) - ids.index(customer_id) - 1
                break
            continue
        result["issued"] += 1
        result["coupon_ids"].append(coupon.id)
    return result


def list_claimable(session: Session, *, merchant_id: int, channel: str, now: dt.datetime | None = None,
                   limit: int = 100) -> list[CouponTemplate]:
    """Active templates offering `channel`, inside their claim window, with stock left (pickers)."""
    now = now or clock.now()
    rows = session.scalars(select(CouponTemplate).where(
        CouponTemplate.merchant_id == merchant_id, CouponTemplate.status == TemplateStatus.ACTIVE.value,
        or_(CouponTemplate.total_stock.is_(None), CouponTemplate.claimed < CouponTemplate.total_stock),
        or_(CouponTemplate.starts_at.is_(None), CouponTemplate.starts_at <= now),
        or_(CouponTemplate.ends_at.is_(None), CouponTemplate.ends_at > now),
    ).order_by(CouponTemplate.id.desc()).limit(max(1, min(limit, 500))))
    return [t for t in rows if channel in (t.channels or [])]


def centre(session: Session, *, merchant_id: int, customer_id: int | None,
           product_id: int | None = None, category_id: int | None = None) -> list[dict[str, Any]]:
    """The coupon centre: claimable templates with how many the customer holds and may still claim.
    With `product_id`, only those that could apply to that product (the product page)."""
    templates = list_claimable(session, merchant_id=merchant_id, channel="centre")
    if product_id is not None:
        templates = [t for t in templates if _covers(t, product_id, category_id)]
    held: dict[int, int] = {}
    if customer_id is not None and templates:
        held = dict(session.execute(select(CouponClaimCount.template_id, CouponClaimCount.claimed).where(
            CouponClaimCount.customer_id == customer_id,
            CouponClaimCount.template_id.in_([t.id for t in templates]))).tuples().all())
    return [{"template": t, "label": describe(t), "claimed_by_me": held.get(t.id, 0),
             "can_claim": held.get(t.id, 0) < t.per_customer_limit,
             "remaining": None if t.total_stock is None else t.total_stock - t.claimed} for t in templates]


def my_coupons(session: Session, *, merchant_id: int, customer_id: int, status: str | None = None,
               limit: int = 200) -> list[tuple[Coupon, CouponTemplate]]:
    """The customer's coupons (newest first) with their templates; `available` ones still in date."""
    stmt = (select(Coupon, CouponTemplate).join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
            .where(Coupon.merchant_id == merchant_id, Coupon.customer_id == customer_id))
    if status:
        stmt = stmt.where(Coupon.status == status)
    stmt = stmt.order_by(Coupon.id.desc()).limit(max(1, min(limit, 500)))
    return [(c, t) for c, t in session.execute(stmt).tuples()]


def available_count(session: Session, *, merchant_id: int, customer_id: int) -> int:
    """Coupons the customer can use now (the "My coupons" badge)."""
    now = clock.now()
    return int(session.scalar(select(func.count()).select_from(Coupon).where(
        Coupon.merchant_id == merchant_id, Coupon.customer_id == customer_id,
        Coupon.status == CouponStatus.AVAILABLE.value, Coupon.valid_until > now)) or 0)


def void_coupon(session: Session, *, actor: Principal, coupon_id: int) -> Coupon:
    require_manager(actor)
    coupon = get_coupon(session, coupon_id, merchant_id=actor.merchant_id)
    assert_coupon_transition(coupon.status, CouponStatus.VOID.value)
    coupon.status = CouponStatus.VOID.value
    coupon.updated_at = clock.now()
    session.flush()
    return coupon


# ==================================================================== giving back, merging, expiry


def give_back(session: Session, *, merchant_id: int, order_id: int, only_unexpired: bool) -> int:
    """Coupons used by an order come back: available while still valid; after their end, expired
    (a cancelled order) or kept as used (a refund: `only_unexpired`)."""
    now = clock.now()
    coupons = list(session.scalars(select(Coupon).where(
        Coupon.merchant_id == merchant_id, Coupon.order_id == order_id,
        Coupon.status == CouponStatus.USED.value).with_for_update()))
    moved = 0
    for coupon in coupons:
        valid = coupon.valid_until > now
        if not valid and only_unexpired:
            continue
        new = CouponStatus.AVAILABLE if valid else CouponStatus.EXPIRED
        assert_coupon_transition(coupon.status, new.value)
        coupon.status = new.value
        coupon.order_id = None
        coupon.order_no = None
        coupon.used_at = None
        coupon.discount_cents = 0
        coupon.order_total_cents = 0
        coupon.updated_at = now
        moved += 1
    session.flush()
    return moved


def move_customer(session: Session, *, merchant_id: int, source_id: int, target_id: int) -> int:
    """customer.merged: the source's coupons and claim counts become the target's."""
    moved = session.execute(update(Coupon).where(Coupon.merchant_id == merchant_id, Coupon.customer_id == source_id)
                            .values(customer_id=target_id)).rowcount
    counts = list(session.scalars(select(CouponClaimCount).where(CouponClaimCount.merchant_id == merchant_id,
                                                                 CouponClaimCount.customer_id == source_id)))
    if counts:
        targets = {c.template_id: c for c in session.scalars(select(CouponClaimCount).where(
            CouponClaimCount.customer_id == target_id,
            CouponClaimCount.template_id.in_([c.template_id for c in counts])))}
        for row in counts:
            if row.template_id in targets:
                targets[row.template_id].claimed += row.claimed
                session.delete(row)
            else:
                row.customer_id = target_id
    session.flush()
    return int(moved or 0)


def expire_due(session: Session, now: dt.datetime) -> dict[str, int]:
    """Unused coupons past their end become expired; scheduled templates whose start has come become
    active; templates past their end are ended. Idempotent, safe to run twice at once (conditional
    UPDATEs on the status)."""
    assert_coupon_transition(CouponStatus.AVAILABLE.value, CouponStatus.EXPIRED.value)
    expired = session.execute(update(Coupon).where(Coupon.status == CouponStatus.AVAILABLE.value,
                                                   Coupon.valid_until <= now)
                              .values(status=CouponStatus.EXPIRED.value, updated_at=now)).rowcount
    assert_template_transition(TemplateStatus.SCHEDULED.value, TemplateStatus.ACTIVE.value)
    started = session.execute(update(CouponTemplate).where(
        CouponTemplate.status == TemplateStatus.SCHEDULED.value, CouponTemplate.starts_at <= now,
        or_(CouponTemplate.ends_at.is_(None), CouponTemplate.ends_at > now))
        .values(status=TemplateStatus.ACTIVE.value, updated_at=now)).rowcount
    ending = [s.value for s in TemplateStatus if s != TemplateStatus.DRAFT
              and TemplateStatus.ENDED in TEMPLATE_TRANSITIONS.table[s]]
    ended = session.execute(update(CouponTemplate).where(
        CouponTemplate.status.in_(ending), and_(CouponTemplate.ends_at.is_not(None), CouponTemplate.ends_at <= now))
        .values(status=TemplateStatus.ENDED.value, updated_at=now)).rowcount
    return {"expired": int(expired or 0), "started": int(started or 0), "ended": int(ended or 0)}
