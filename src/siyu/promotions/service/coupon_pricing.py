"""promotions: coupons (优惠券) — pricing: what a coupon gives in words, and the checkout contributors.

`promotions.coupon` (priority 70: one discount coupon per order, on the lines open to coupons in its
scope) and `promotions.free_shipping_coupon` (87), the picker's choices, and marking a coupon used by
an order (one conditional UPDATE at commit). `siyu.promotions.service.coupons` re-exports these names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.errors import Conflict, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.money import apply_bps, div_half_up, format_cents
from siyu.orders import pricing
from siyu.promotions.models.coupons import Coupon, CouponTemplate
from siyu.promotions.states.coupons import (
    CouponStatus,
    assert_coupon_transition,
)


class CouponUnusable(Conflict):
    code = "coupon_unavailable"
    message = "This coupon cannot be used on this order."


# ==================================================================== labels


def _pct_off(bps: int) -> str:
    # 1500 bps off = 8.5 折; English shows "15% off".
    whole, rest = divmod(bps, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


def _zhe(bps: int) -> str:
    # 1500 bps off = 8.5 折 (tenths of the price paid).
    paid = 10_000 - bps
    return f"{paid // 1000}" + (f".{paid % 1000:03d}".rstrip("0") if paid % 1000 else "")


def describe(template: CouponTemplate, amount_cents: int | None = None) -> str:
    """What the coupon gives, in the customer's words ("¥20 off over ¥100")."""
    amount = amount_cents if amount_cents is not None else template.amount_cents
    over = template.threshold_cents
    if template.kind == "percent":
        text = _("{pct} off", pct=_pct_off(template.percent_bps), zhe=_zhe(template.percent_bps))
        if template.cap_cents:
            text += _(", up to {cap}", cap=format_cents(template.cap_cents))
    elif template.kind == "free_shipping":
        text = _("Free shipping")
    elif template.kind == "exchange":
        text = _("One item free")
    else:
        text = _("{amount} off", amount=format_cents(amount))
    if over > 0:
        text = _("Over {threshold}: {benefit}", threshold=format_cents(over), benefit=text)
    return text


# ==================================================================== pricing


def _covers(template: CouponTemplate, product_id: int, category_id: int | None) -> bool:
    if product_id in set(template.excluded_product_ids or []):
        return False
    if template.scope == "products":
        return product_id in set(template.scope_product_ids or [])
    if template.scope == "categories":
        return category_id is not None and category_id in set(template.scope_category_ids or [])
    return True


@dataclasses.dataclass
class Evaluation:
    saves_cents: int = 0
    sku_ids: list[int] = dataclasses.field(default_factory=list)
    reason: str | None = None  # an error code when the coupon cannot be used here


def evaluate(template: CouponTemplate, coupon: Coupon | None, ctx: pricing.PricingContext) -> Evaluation:
    """What a discount coupon would take off this checkout as it stands (no writes, no queries)."""
    now = ctx.now or clock.now()
    if coupon is not None:
        if coupon.status != CouponStatus.AVAILABLE.value:
            return Evaluation(reason="coupon_unavailable")
        if now < coupon.valid_from:
            return Evaluation(reason="coupon_not_started")
        if now >= coupon.valid_until:
            return Evaluation(reason="coupon_expired")
    lines = [line for line in ctx.lines_open_to("coupons") if _covers(template, line.product_id, line.category_id)]
    if not lines:
        return Evaluation(reason="coupon_not_applicable")
    base = sum(line.amount_cents for line in lines)
    if base < template.threshold_cents:
        return Evaluation(reason="coupon_threshold_not_met")
    sku_ids = [line.sku_id for line in lines]
    amount = coupon.amount_cents if coupon is not None and coupon.amount_cents else template.amount_cents
    if template.kind in ("fixed", "threshold"):
        saves = amount
    elif template.kind == "percent":
        saves = apply_bps(base, template.percent_bps)
        if template.cap_cents:
            saves = min(saves, template.cap_cents)
    elif template.kind == "exchange":
        target = [line for line in lines if line.sku_id == template.exchange_sku_id
                  or (template.exchange_sku_id is None and line.product_id == template.exchange_product_id)]
        if not target:
            return Evaluation(reason="coupon_not_applicable")
        line = target[0]
        saves, sku_ids = div_half_up(line.amount_cents, line.quantity), [line.sku_id]
    else:
        return Evaluation(reason="coupon_not_applicable")
    saves = min(saves, sum(line.amount_cents for line in lines if line.sku_id in sku_ids))
    if saves <= 0:
        return Evaluation(reason="coupon_not_applicable")
    return Evaluation(saves_cents=saves, sku_ids=sku_ids)


REASON_MESSAGES = {
    "coupon_unavailable": "This coupon has been used or is no longer available.",
    "coupon_not_started": "This coupon cannot be used yet.",
    "coupon_expired": "This coupon has expired.",
    "coupon_not_applicable": "This coupon does not cover anything in this order.",
    "coupon_threshold_not_met": "Spend {threshold} on the items this coupon covers to use it.",
}

EXTRA_KEY = "promotions.coupons"


def _refuse(reason: str, coupon: Coupon, template: CouponTemplate) -> Conflict:
    return CouponUnusable(REASON_MESSAGES[reason], code=reason,
                          details={"coupon_id": coupon.id, "threshold_cents": template.threshold_cents},
                          threshold=format_cents(template.threshold_cents))


def _load_chosen(session: Session, ctx: pricing.PricingContext) -> list[tuple[Coupon, CouponTemplate]]:
    ids = list(dict.fromkeys(ctx.coupon_ids))
    rows = [(c, t) for c, t in session.execute(
        select(Coupon, CouponTemplate).join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.id.in_(ids), Coupon.merchant_id == ctx.merchant_id,
               Coupon.customer_id == ctx.customer_id)).tuples()]
    found = {c.id for c, _t in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed("This coupon is not yours or does not exist.", code="coupon_not_found",
                               details={"fields": {"coupon_ids": _("Choose one of your coupons.")},
                                        "coupon_ids": missing})
    return rows


def _candidates(session: Session, ctx: pricing.PricingContext) -> list[tuple[Coupon, CouponTemplate]]:
    now = ctx.now or clock.now()
    return [(c, t) for c, t in session.execute(
        select(Coupon, CouponTemplate).join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.merchant_id == ctx.merchant_id, Coupon.customer_id == ctx.customer_id,
               Coupon.status == CouponStatus.AVAILABLE.value, Coupon.valid_from <= now, Coupon.valid_until > now)
        .order_by(Coupon.valid_until, Coupon.id).limit(200)).tuples()]


def _choice(coupon: Coupon, template: CouponTemplate, saves: int, reason: str | None) -> dict[str, Any]:
    return {"coupon_id": coupon.id, "template_id": template.id, "kind": template.kind, "name": template.name,
            "label": describe(template, coupon.amount_cents), "saves_cents": saves, "applicable": reason is None,
            "reason": reason, "valid_until": coupon.valid_until.isoformat()}


class CouponContributor:
    """`promotions.coupon` (70): the order's one discount coupon (see the module's stacking rules);
    in previews, the customer's coupons with what each would save and the best one."""

    name = "promotions.coupon"
    priority = 70

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        if ctx.customer_id is None or (not ctx.coupon_ids and not ctx.preview):
            return
        if ctx.extra.get("points_mall_item_id"):
            # A points-mall exchange is priced in points; coupons stay out of it.
            if ctx.coupon_ids:
                raise CouponUnusable(REASON_MESSAGES["coupon_not_applicable"], code="coupon_not_applicable")
            return
        state: dict[str, Any] = {}
        ctx.extra[EXTRA_KEY] = state
        chosen = _load_chosen(session, ctx) if ctx.coupon_ids else []
        candidates = _candidates(session, ctx) if ctx.preview else []
        discount = [(c, t) for c, t in chosen if t.kind != "free_shipping"]
        shipping = [(c, t) for c, t in chosen if t.kind == "free_shipping"]
        if len(discount) > 1 or len(shipping) > 1:
            raise ValidationFailed("One coupon and one free-shipping coupon per order.", code="one_coupon_per_order",
                                   details={"fields": {"coupon_ids": _("One coupon and one free-shipping coupon per order.")}})
        if ctx.preview:
            choices: list[dict[str, Any]] = []
            shipping_candidates = []
            for coupon, template in candidates:
                if template.kind == "free_shipping":
                    shipping_candidates.append((coupon, template))
                    continue
                ev = evaluate(template, coupon, ctx)
                choices.append(_choice(coupon, template, ev.saves_cents, ev.reason))
            choices.sort(key=lambda ch: (not ch["applicable"], -ch["saves_cents"], ch["coupon_id"]))
            notice = {"kind": "coupon_choices", "items": choices,
                      "chosen": [c.id for c, _t in chosen]}
            if candidates or chosen:  # a customer without coupons gets no picker
                ctx.notices.append(notice)
            state["choices"] = notice
            state["shipping_candidates"] = shipping_candidates
            best = next((ch for ch in choices if ch["applicable"]), None)
            if best is not None and not discount:
                ctx.notices.append({"kind": "best_coupon", "coupon_id": best["coupon_id"],
                                    "saves_cents": best["saves_cents"], "label": best["label"],
                                    "message": _("Use “{label}” to save {amount}.", label=best["label"],
                                                 amount=format_cents(best["saves_cents"]))})
        state["shipping"] = shipping[0] if shipping else None
        if discount:
            coupon, template = discount[0]
            ev = evaluate(template, coupon, ctx)
            if ev.reason:
                raise _refuse(ev.reason, coupon, template)
            adjustment = ctx.add_adjustment(kind="coupon", label=template.name, amount_cents=-ev.saves_cents,
                                            source=self.name, sku_ids=ev.sku_ids,
                                            details={"coupon_id": coupon.id, "template_id": template.id,
                                                     "coupon_kind": template.kind})
            if adjustment is not None:
                state["discount"] = {"coupon_id": coupon.id, "cents": -adjustment.amount_cents}

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        used = (ctx.extra.get(EXTRA_KEY) or {}).get("discount")
        if used:
            use_coupon(session, ctx, coupon_id=used["coupon_id"], order_id=order_id, order_no=order_no,
                       discount_cents=used["cents"])


class FreeShippingCouponContributor:
    """`promotions.free_shipping_coupon` (87): the order's one free-shipping coupon waives the
    delivery fee left after the shipping rules and the member's free shipping."""

    name = "promotions.free_shipping_coupon"
    priority = 87

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        state = ctx.extra.get(EXTRA_KEY)
        if not state:
            return
        if ctx.preview and state.get("choices") is not None:
            for coupon, template in state.get("shipping_candidates") or []:
                reason = self._reason(template, coupon, ctx)
                saves = ctx.shipping_cents if reason is None else 0
                state["choices"]["items"].append(_choice(coupon, template, saves, reason))
        chosen = state.get("shipping")
        if not chosen:
            return
        coupon, template = chosen
        reason = self._reason(template, coupon, ctx)
        if reason == "coupon_not_needed":
            ctx.notices.append({"kind": "coupon_not_needed", "coupon_id": coupon.id,
                                "message": _("This order ships free already: the coupon is kept for later.")})
            return
        if reason:
            raise _refuse(reason, coupon, template)
        waived = ctx.shipping_cents
        ctx.shipping_cents = 0
        ctx.shipping_label = "coupon_free"
        ctx.notices.append({"kind": "free_shipping_coupon", "coupon_id": coupon.id, "waived_cents": waived,
                            "message": _("Free shipping with your coupon: {amount} saved.",
                                         amount=format_cents(waived))})
        state["shipping_used"] = {"coupon_id": coupon.id, "cents": waived}

    @staticmethod
    def _reason(template: CouponTemplate, coupon: Coupon, ctx: pricing.PricingContext) -> str | None:
        now = ctx.now or clock.now()
        if coupon.status != CouponStatus.AVAILABLE.value:
            return "coupon_unavailable"
        if now < coupon.valid_from:
            return "coupon_not_started"
        if now >= coupon.valid_until:
            return "coupon_expired"
        lines = [line for line in ctx.lines_open_to("coupons")
                 if _covers(template, line.product_id, line.category_id)]
        if not lines:
            return "coupon_not_applicable"
        if sum(line.amount_cents for line in lines) < template.threshold_cents:
            return "coupon_threshold_not_met"
        if ctx.fulfilment.type != "delivery" or ctx.shipping_cents <= 0:
            return "coupon_not_needed"
        return None

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        used = (ctx.extra.get(EXTRA_KEY) or {}).get("shipping_used")
        if used:
            use_coupon(session, ctx, coupon_id=used["coupon_id"], order_id=order_id, order_no=order_no,
                       discount_cents=used["cents"])


def use_coupon(session: Session, ctx: pricing.PricingContext, *, coupon_id: int, order_id: int, order_no: str,
               discount_cents: int) -> None:
    """Mark the coupon used by this order: one conditional UPDATE (available → used), so a racing
    order with the same coupon finds it gone (409 `coupon_unavailable`) and rolls back."""
    assert_coupon_transition(CouponStatus.AVAILABLE.value, CouponStatus.USED.value)
    now = ctx.now or clock.now()
    result = session.execute(
        update(Coupon).where(Coupon.id == coupon_id, Coupon.merchant_id == ctx.merchant_id,
                             Coupon.customer_id == ctx.customer_id, Coupon.status == CouponStatus.AVAILABLE.value,
                             Coupon.valid_until > now)
        .values(status=CouponStatus.USED.value, order_id=order_id, order_no=order_no, used_at=now,
                discount_cents=discount_cents, order_total_cents=ctx.total_cents, updated_at=now))
    if result.rowcount != 1:
        raise CouponUnusable(REASON_MESSAGES["coupon_unavailable"], details={"coupon_id": coupon_id})


pricing.register_contributor(CouponContributor())
pricing.register_contributor(FreeShippingCouponContributor())


def applicable(session: Session, ctx: pricing.PricingContext) -> list[dict[str, Any]]:
    """The customer's coupons for a previewed checkout (the picker), best first."""
    notice = next((n for n in ctx.notices if n.get("kind") == "coupon_choices"), None)
    return list(notice["items"]) if notice else []
