"""membership: points at checkout, through the orders pricing-contributor protocol.

- `membership.points_mall` (priority 10): a points-mall exchange (the checkout names the mall item):
  the line costs the item's cash part; its points are taken when the order is placed.
- `membership.points` (priority 90): the checkout's `points` as a cash deduction
  (`redeem_points_per_yuan` points = ¥1), capped at `redeem_cap_bps` of the order and at the points
  the member can spend now (asking for more than they have: 409 `insufficient_points`). Both commit by spending the points in the order's transaction (409
  `insufficient_points` when a racing order took them first); `order.cancelled` and
  `order.refunded` give them back (handlers)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.core.errors import field_error
from siyu.core.i18n import gettext as _
from siyu.core.money import apply_bps
from siyu.membership.service import members as members_service
from siyu.membership.service import points, points_mall
from siyu.orders import pricing


class PointsContributor:
    name = "membership.points"
    priority = 90

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        if ctx.points <= 0 or ctx.customer_id is None or ctx.extra.get("points_mall_item_id"):
            return
        member = members_service.member_of(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id)
        if member is None:
            ctx.notices.append({"kind": "points_unavailable", "message": _("Activate your member card to use points.")})
            return
        r = members_service.rules(session, ctx.merchant_id)
        have = points.available(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id, now=ctx.now)
        if ctx.points > have:
            # Asked for more than there is (or a racing order took them): refused, never silently dropped.
            raise points.InsufficientPoints("Not enough points: you can use {available}.", available=have,
                                            details={"requested": ctx.points, "available": have})
        wanted = ctx.points
        cap = apply_bps(ctx.total_cents, r.redeem_cap_bps) if r.redeem_cap_bps < 10_000 else ctx.total_cents
        cents = min(points.points_value_cents(wanted, r.redeem_points_per_yuan), cap, ctx.payable_cents)
        used = points.points_for_cents(cents, r.redeem_points_per_yuan)
        if cents <= 0 or used <= 0:
            ctx.notices.append({"kind": "points_unusable", "message": _("No points can be used on this order."),
                                "available": have})
            return
        part = ctx.add_payment_part(kind="points", amount_cents=cents, source=self.name,
                                    details={"points": used, "points_per_yuan": r.redeem_points_per_yuan})
        if part is None:
            return
        ctx.extra["membership.points"] = {"points": used, "cents": cents}
        ctx.notices.append({"kind": "points_used",
                            "message": _("{used} of your {have} points pay {amount}.", used=used, have=have,
                                         amount=f"¥{cents / 100:.2f}"),
                            "points": used, "available": have, "amount_cents": cents})

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        used = ctx.extra.get("membership.points")
        if not used or ctx.customer_id is None:
            return
        points.spend_for_order(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id, order_id=order_id,
                               order_no=order_no, points=used["points"], cents=used["cents"])


class PointsMallContributor:
    name = "membership.points_mall"
    priority = 10

    def contribute(self, session: Session, ctx: pricing.PricingContext) -> None:
        item_id = ctx.extra.get("points_mall_item_id")
        if not item_id:
            return
        if ctx.customer_id is None:
            return
        item = points_mall.get_item(session, int(item_id), merchant_id=ctx.merchant_id, active_only=True)
        lines = [line for line in ctx.lines if line.sku_id == item.sku_id]
        if len(ctx.lines) != 1 or not lines:
            raise field_error("items", "A points-mall exchange is for its own item only.")
        line = lines[0]
        if line.quantity > item.per_order_limit:
            raise field_error("items", "At most {n} of this item per exchange.", n=item.per_order_limit)
        member = members_service.member_of(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id)
        if member is None:
            raise points.InsufficientPoints("Activate your member card to use points.", code="not_a_member")
        needed = item.points * line.quantity
        have = points.available(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id, now=ctx.now)
        if have < needed:
            raise points.InsufficientPoints(details={"requested": needed, "available": have})
        discount = line.amount_cents - item.cash_cents * line.quantity
        if discount > 0:
            ctx.add_adjustment(kind="points_mall", label="Points exchange", amount_cents=-discount, source=self.name,
                               sku_ids=[line.sku_id], details={"mall_item_id": item.id, "points": needed})
        ctx.extra["membership.mall"] = {"item_id": item.id, "points": needed}
        ctx.notices.append({"kind": "points_mall", "message": _("{n} points are exchanged for this item.", n=needed),
                            "points": needed})

    def commit(self, session: Session, ctx: pricing.PricingContext, *, order_id: int, order_no: str) -> None:
        mall = ctx.extra.get("membership.mall")
        if not mall or ctx.customer_id is None:
            return
        points.spend_for_order(session, merchant_id=ctx.merchant_id, customer_id=ctx.customer_id, order_id=order_id,
                               order_no=order_no, points=mall["points"], cents=0, mall_item_id=mall["item_id"])


pricing.register_contributor(PointsMallContributor())
pricing.register_contributor(PointsContributor())
