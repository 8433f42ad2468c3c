"""The pricing pipeline: a checkout's price is built by contributors, each adding to a typed context.

Everything a contributor needs from `orders` (lines, fulfilment, the merchant's settings, what the
customer asked for) is loaded once into `PricingContext` before the pipeline runs, so pricing does no
hidden queries. Contributors run by `priority` (lower first):

- 0–49   line-level prices and discounts (promotions: flash sales, coupons, ladder prices …)
- 50–79  order-level discounts (membership tier discounts …)
- 80     shipping (here: merchant shipping rules)
- 90–99  payment parts: points, stored value (membership)

`orders` ships the shipping contributor; other domains register theirs with `register_contributor()`
without `orders` knowing them. total = lines + adjustments + shipping (never below 0);
payable = total − payment parts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.orm import Session

from siyu.core.money import split_largest_remainder


@dataclasses.dataclass
class PricingLine:
    sku_id: int
    product_id: int
    category_id: int | None
    title: str
    spec: dict[str, Any]
    unit_price_cents: int
    quantity: int
    subtotal_cents: int = 0
    image_url: str = ""
    # The sum of this line's shares of the adjustments so far (negative = discounted).
    adjustment_cents: int = 0
    # Set by a contributor that sells this line at a campaign price (flash sale, team buy, bargain,
    # ladder): {"kind", "campaign_id", "coupons": bool, "member_discount": bool}. Later contributors
    # leave a promotional line alone unless the campaign allows them ("coupons", "member_discount").
    promo: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.subtotal_cents:
            self.subtotal_cents = self.unit_price_cents * self.quantity

    @property
    def amount_cents(self) -> int:
        """What this line costs after the adjustments so far."""
        return self.subtotal_cents + self.adjustment_cents


@dataclasses.dataclass
class Adjustment:
    kind: str  # e.g. "coupon", "flash_sale", "tier_discount", "surcharge"
    label: str
    amount_cents: int  # negative = discount
    source: str  # the contributor's name
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    # This adjustment's share per line (aligned with ctx.lines), by largest remainder.
    allocation: list[int] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "amount_cents": self.amount_cents, "source": self.source,
                "details": self.details}


@dataclasses.dataclass
class PaymentPart:
    kind: str  # "points", "stored_value" …
    amount_cents: int
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "amount_cents": self.amount_cents, "details": self.details, "source": self.source}


@dataclasses.dataclass(frozen=True)
class Fulfilment:
    type: str  # "delivery" | "pickup" | "leader"
    address: dict[str, str] | None = None
    store_id: int | None = None
    leader_id: int | None = None
    # Loaded for pickup: the store's name and address for the snapshot.
    store: dict[str, Any] | None = None

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        if self.address is not None:
            data["address"] = dict(self.address)
        if self.store_id is not None:
            data["store_id"] = self.store_id
            if self.store:
                data["store"] = dict(self.store)
        if self.leader_id is not None:
            data["leader_id"] = self.leader_id
        return data


@dataclasses.dataclass
class PricingContext:
    merchant_id: int
    customer_id: int | None
    lines: list[PricingLine]
    fulfilment: Fulfilment
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    coupon_ids: list[int] = dataclasses.field(default_factory=list)
    points: int = 0
    use_balance: bool = False
    share_code: str | None = None
    # The campaign the customer buys through (CheckoutRequest.promotion as a dict), or None.
    promotion: dict[str, Any] | None = None
    # True for a checkout preview (nothing is placed): contributors may add suggestions then
    # (e.g. the best coupon) that an order placement does not need.
    preview: bool = False
    now: dt.datetime | None = None
    adjustments: list[Adjustment] = dataclasses.field(default_factory=list)
    shipping_cents: int = 0
    shipping_label: str = ""
    payment_parts: list[PaymentPart] = dataclasses.field(default_factory=list)
    # Contributors may leave notes for the customer ("coupon X does not apply") here.
    notices: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # Free space for contributors to pass what they found to their `commit` step.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def subtotal_cents(self) -> int:
        return sum(line.subtotal_cents for line in self.lines)

    @property
    def adjustments_cents(self) -> int:
        return sum(a.amount_cents for a in self.adjustments)

    @property
    def goods_cents(self) -> int:
        """Lines after adjustments (never below 0: discounts are capped when added)."""
        return sum(line.amount_cents for line in self.lines)

    @property
    def total_cents(self) -> int:
        return max(0, self.goods_cents + self.shipping_cents)

    @property
    def payment_parts_cents(self) -> int:
        return sum(p.amount_cents for p in self.payment_parts)

    @property
    def payable_cents(self) -> int:
        return max(0, self.total_cents - self.payment_parts_cents)

    def add_adjustment(self, *, kind: str, label: str, amount_cents: int, source: str,
                       sku_ids: list[int] | None = None, details: dict[str, Any] | None = None) -> Adjustment | None:
        """Add a discount (negative) or surcharge, allocated across the lines (only those of
        `sku_ids` when given) in proportion to what they cost so far. A discount is capped at what
        those lines still cost, so no line goes below 0. Returns None when nothing is left to take."""
        targets = [i for i, line in enumerate(self.lines) if sku_ids is None or line.sku_id in sku_ids]
        available = sum(self.lines[i].amount_cents for i in targets)
        if amount_cents < 0:
            amount_cents = max(amount_cents, -available)
        if amount_cents == 0 or not targets:
            return None
        weights = [self.lines[i].amount_cents for i in targets]
        if sum(weights) == 0:
            weights = [1] * len(targets)
        shares = split_largest_remainder(amount_cents, weights)
        allocation = [0] * len(self.lines)
        for i, share in zip(targets, shares, strict=True):
            allocation[i] = share
            self.lines[i].adjustment_cents += share
        adjustment = Adjustment(kind=kind, label=label, amount_cents=amount_cents, source=source,
                                details=dict(details or {}), allocation=allocation)
        self.adjustments.append(adjustment)
        return adjustment

    def add_payment_part(self, *, kind: str, amount_cents: int, source: str,
                         details: dict[str, Any] | None = None) -> PaymentPart | None:
        """Pay part of the total another way (points, stored value); capped at what is still payable."""
        amount_cents = min(max(0, amount_cents), self.payable_cents)
        if amount_cents == 0:
            return None
        part = PaymentPart(kind=kind, amount_cents=amount_cents, details=dict(details or {}), source=source)
        self.payment_parts.append(part)
        return part

    def lines_open_to(self, what: str) -> list[PricingLine]:
        """The lines a later discount may touch: those not at a campaign price, and those whose
        campaign allows `what` ("coupons" or "member_discount")."""
        return [line for line in self.lines if line.promo is None or line.promo.get(what)]

    def line_discounts(self) -> list[int]:
        return [line.adjustment_cents for line in self.lines]


@runtime_checkable
class PricingContributor(Protocol):
    """A step of the pricing pipeline. `contribute` reads and adds to the context; it must not
    write anything (a preview runs it too)."""

    name: str
    priority: int

    def contribute(self, session: Session, ctx: PricingContext) -> None: ...


@runtime_checkable
class CommittingContributor(PricingContributor, Protocol):
    """A contributor whose contribution must be made real when the order is placed (use a coupon,
    take points or stored value), in the order's transaction. Given back on `order.cancelled` /
    `order.refunded` by the contributor's own domain."""

    def commit(self, session: Session, ctx: PricingContext, *, order_id: int, order_no: str) -> None: ...


_contributors: dict[str, PricingContributor] = {}


def register_contributor(contributor: PricingContributor) -> PricingContributor:
    """Add (or replace, by name) a contributor to every checkout's pipeline."""
    if not isinstance(contributor, PricingContributor):
        raise TypeError("a pricing contributor needs name, priority and contribute()")
    _contributors[contributor.name] = contributor
    _ordered.clear()
    return contributor


def unregister_contributor(name: str) -> None:
    _contributors.pop(name, None)
    _ordered.clear()


# The pipeline in order, and its committing contributors, worked out once per change of the registry (a
# runtime Protocol check costs more than a contributor with nothing to do).
_ordered: dict[str, list[Any]] = {}


def _pipeline(kind: str) -> list[Any]:
    if not _ordered:
        every = sorted(_contributors.values(), key=lambda c: (c.priority, c.name))
        _ordered["all"] = every
        _ordered["committing"] = [c for c in every if isinstance(c, CommittingContributor)]
    return _ordered[kind]


def contributors() -> list[PricingContributor]:
    return list(_pipeline("all"))


# Admission checks: cheap refusals run first thing in preview and place_order, before anything is loaded
# (a sold-out flash item answered by one indexed read or a Redis mark). `fn(session, merchant_id, request)`
# raises to refuse; it must return at once (no query) when the request is not its business.
_admission_checks: dict[str, Any] = {}


def register_admission_check(fn: Any) -> Any:
    """Add (or replace, by module and name) an admission check."""
    _admission_checks[f"{fn.__module__}.{fn.__qualname__}"] = fn
    return fn


def run_admission_checks(session: Session, merchant_id: int, request: Any) -> None:
    for fn in _admission_checks.values():
        fn(session, merchant_id, request)


def run_pipeline(session: Session, ctx: PricingContext) -> PricingContext:
    for contributor in _pipeline("all"):
        contributor.contribute(session, ctx)
    return ctx


def commit_contributions(session: Session, ctx: PricingContext, *, order_id: int, order_no: str) -> None:
    for contributor in _pipeline("committing"):
        contributor.commit(session, ctx, order_id=order_id, order_no=order_no)


# ---------------------------------------------------------------- shipping


@dataclasses.dataclass(frozen=True)
class ShippingRule:
    flat_cents: int = 0
    # Free when the goods (after discounts) cost at least this much; None = never free.
    free_over_cents: int | None = None


@dataclasses.dataclass(frozen=True)
class ShippingRules:
    default: ShippingRule = ShippingRule()
    # Province name (or its start, e.g. "新疆") -> its own rule.
    provinces: dict[str, ShippingRule] = dataclasses.field(default_factory=dict)

    def for_province(self, province: str | None) -> ShippingRule:
        province = (province or "").strip()
        if province:
            for key, rule in self.provinces.items():
                if province == key or province.startswith(key):
                    return rule
        return self.default

    def as_settings(self) -> dict[str, Any]:
        def one(rule: ShippingRule) -> dict[str, Any]:
            return {"flat_cents": rule.flat_cents, "free_over_cents": rule.free_over_cents}

        return {**one(self.default), "provinces": {k: one(v) for k, v in self.provinces.items()}}


def _rule(data: Any) -> ShippingRule:
    if not isinstance(data, dict):
        return ShippingRule()
    flat = data.get("flat_cents", 0)
    free = data.get("free_over_cents")
    return ShippingRule(flat_cents=flat if isinstance(flat, int) and flat >= 0 else 0,
                        free_over_cents=free if isinstance(free, int) and free >= 0 else None)


def shipping_rules(settings: dict[str, Any] | None) -> ShippingRules:
    """The merchant's shipping rules from its settings (`settings["shipping"]`); free by default."""
    data = (settings or {}).get("shipping")
    if not isinstance(data, dict):
        return ShippingRules()
    provinces = data.get("provinces") if isinstance(data.get("provinces"), dict) else {}
    return ShippingRules(default=_rule(data), provinces={str(k): _rule(v) for k, v in provinces.items()})


class ShippingContributor:
    """Delivery pays the merchant's shipping fee: flat, free over a threshold, or the province's own
    rule. Pickup at a store and leader pickup pay no shipping."""

    name = "orders.shipping"
    priority = 80

    def contribute(self, session: Session, ctx: PricingContext) -> None:
        if ctx.fulfilment.type != "delivery":
            ctx.shipping_cents = 0
            return
        province = (ctx.fulfilment.address or {}).get("province")
        rule = shipping_rules(ctx.settings).for_province(province)
        if rule.free_over_cents is not None and ctx.goods_cents >= rule.free_over_cents:
            ctx.shipping_cents = 0
            ctx.shipping_label = "free_over"
            return
        ctx.shipping_cents = rule.flat_cents
        ctx.shipping_label = "flat" if rule.flat_cents else ""


register_contributor(ShippingContributor())
