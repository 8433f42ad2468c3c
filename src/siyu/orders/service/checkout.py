"""Checkout: price a basket through the pricing pipeline, and place the order (reserving stock)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from siyu.attribution.service import funnel
from siyu.attribution.service import ownership as attribution
from siyu.catalog import service as catalog
from siyu.core import clock, ids
from siyu.core.auth import Principal, system_principal
from siyu.core.errors import NotFound, PermissionDenied, field_error
from siyu.core.events import emit
from siyu.customers import service as customers
from siyu.db import add_written, last_in_transaction
from siyu.merchants import service as merchants
from siyu.orders import events as ev
from siyu.orders import pricing
from siyu.orders.models import Order, OrderLine
from siyu.orders.schemas import CheckoutRequest, DeliveryFulfilment, LeaderFulfilment, PickupFulfilment
from siyu.orders.service import cart as cart_service
from siyu.orders.service.addresses import address_snapshot, get_address
from siyu.orders.service.catalog_facts import SkuInfo, category_of, load_skus
from siyu.orders.service.common import (
    OutOfStock,
    SkuUnavailable,
    add_history,
    settings_from,
)
from siyu.orders.service.lifecycle import apply_payment
from siyu.orders.states import OrderStatus


def _customer_id(actor: Principal) -> int:
    if actor.kind != "customer" or actor.customer_id is None:
        raise PermissionDenied()
    return actor.customer_id


def new_order_no(now: dt.datetime | None = None) -> str:
    """Readable and unique: the local date (YYMMDD), a 10-digit slot of the real clock (10 µs steps
    within the day) and 4 random digits, e.g. 24112303912345670042."""
    local = clock.local(now or clock.now())
    assert local is not None
    slot = ids.clock_slot(10_000_000_000)
    return f"{local:%y%m%d}{slot:010d}{ids.randbelow(10_000):04d}"


def _merge_items(request: CheckoutRequest) -> dict[int, int]:
    """sku id -> quantity, the same SKU asked for twice counted once (in first-seen order)."""
    wanted: dict[int, int] = {}
    for item in request.items:
        wanted[item.sku_id] = wanted.get(item.sku_id, 0) + item.quantity
    for sku_id, quantity in wanted.items():
        if quantity > 999:
            raise field_error("items", "At most 999 of one item per order.", sku_id=sku_id)
    return wanted


def _fulfilment(session: Session, request: CheckoutRequest, actor: Principal) -> pricing.Fulfilment:
    f = request.fulfilment
    if isinstance(f, DeliveryFulfilment):
        if f.address is not None:
            return pricing.Fulfilment(type="delivery", address=f.address.model_dump())
        if f.address_id is not None:
            return pricing.Fulfilment(type="delivery", address=address_snapshot(get_address(session, f.address_id,
                                                                                            actor=actor)))
        raise field_error("fulfilment.address", "Choose a delivery address.")
    if isinstance(f, PickupFulfilment):
        try:
            store = merchants.get_store(session, f.store_id, actor=system_principal(actor.merchant_id))
        except NotFound as exc:
            raise field_error("fulfilment.store_id", "This store does not exist.") from exc
        if not store.active:
            raise field_error("fulfilment.store_id", "This store does not take pickup orders now.")
        return pricing.Fulfilment(type="pickup", store_id=store.id,
                                  store={"name": store.name, "address": store.address, "phone": store.phone,
                                         "opening_hours": store.opening_hours})
    assert isinstance(f, LeaderFulfilment)
    # The group-buying domain validates leaders (through its own contributor) when it lands.
    return pricing.Fulfilment(type="leader", leader_id=f.leader_id)


def build_context(session: Session, *, actor: Principal, request: CheckoutRequest, check_stock: bool = True,
                  preview: bool = False) -> tuple[pricing.PricingContext, dict[int, SkuInfo]]:
    """Load everything pricing needs once (SKUs, fulfilment, the merchant's settings), check that
    every item is for sale, then run the pricing pipeline."""
    customer_id = _customer_id(actor)
    wanted = _merge_items(request)
    skus = load_skus(session, merchant_id=actor.merchant_id, sku_ids=list(wanted))
    lines = []
    for sku_id, quantity in wanted.items():
        info = skus.get(sku_id)
        if info is None or not info.sellable:
            raise SkuUnavailable(details={"sku_id": sku_id})
        if check_stock and info.stock < quantity:
            raise OutOfStock(details={"sku_id": sku_id, "stock": info.stock, "requested": quantity})
        lines.append(pricing.PricingLine(sku_id=sku_id, product_id=info.product_id, category_id=category_of(info),
                                         title=info.title, spec=dict(info.spec), unit_price_cents=info.price_cents,
                                         quantity=quantity, image_url=info.image or ""))
    fulfilment = _fulfilment(session, request, actor)
    merchant = merchants.get_merchant(session, actor.merchant_id)
    ctx = pricing.PricingContext(
        merchant_id=actor.merchant_id, customer_id=customer_id, lines=lines, fulfilment=fulfilment,
        settings=dict(merchant.settings or {}), coupon_ids=list(request.coupon_ids), points=request.points,
        use_balance=request.use_balance, share_code=request.share_code, now=clock.now(),
        promotion=request.promotion.model_dump() if request.promotion is not None else None, preview=preview,
        extra={"points_mall_item_id": request.points_mall_item_id} if request.points_mall_item_id else {},
    )
    pricing.run_pipeline(session, ctx)
    return ctx, skus


def breakdown(ctx: pricing.PricingContext) -> dict[str, Any]:
    """The explainable price: each line, every adjustment, shipping, total and payable."""
    return {
        "lines": [
            {"sku_id": line.sku_id, "product_id": line.product_id, "title": line.title, "spec": line.spec,
             "image_url": line.image_url, "unit_price_cents": line.unit_price_cents, "quantity": line.quantity,
             "subtotal_cents": line.subtotal_cents, "discount_cents": line.adjustment_cents,
             "paid_cents": line.amount_cents}
            for line in ctx.lines
        ],
        "subtotal_cents": ctx.subtotal_cents,
        "adjustments": [{"kind": a.kind, "label": a.label, "amount_cents": a.amount_cents} for a in ctx.adjustments],
        "shipping_cents": ctx.shipping_cents,
        "total_cents": ctx.total_cents,
        "payment_parts": [{"kind": p.kind, "amount_cents": p.amount_cents} for p in ctx.payment_parts],
        "payable_cents": ctx.payable_cents,
        "fulfilment": ctx.fulfilment.snapshot(),
        "notices": list(ctx.notices),
    }


def preview(session: Session, *, actor: Principal, request: CheckoutRequest) -> dict[str, Any]:
    """Price a basket without writing anything (409 `out_of_stock` when stock is visibly short)."""
    pricing.run_admission_checks(session, actor.merchant_id, request)
    ctx, _ = build_context(session, actor=actor, request=request, preview=True)
    return breakdown(ctx)


def create_order(session: Session, *, actor: Principal, request: CheckoutRequest, from_cart: bool = False) -> Order:
    """Place an order (see `place_order`)."""
    return place_order(session, actor=actor, request=request, from_cart=from_cart)[0]


def place_order(session: Session, *, actor: Principal, request: CheckoutRequest,
                from_cart: bool = False, reserve_last: bool = False) -> tuple[Order, list[OrderLine]]:
    """Place an order and return it with its lines (in id order): price it, write the order and its snapshot lines, then reserve stock with one
    conditional decrement per SKU (in SKU-id order, the hot rows locked last), so stock never goes
    below zero. Raises 409 `out_of_stock` (details: sku_id) when a SKU is short; the caller's unit
    of work then rolls back and nothing is kept. An order with nothing to pay is paid at once.

    With `reserve_last` the reserve is queued for the end of the transaction (`siyu.db.last_in_transaction`;
    the caller runs `siyu.db.run_last` once the rest of its work, e.g. the idempotent answer, is written):
    a SKU's row is then locked for the commit alone, which is what every other buyer of a flash sale
    waits for."""
    pricing.run_admission_checks(session, actor.merchant_id, request)
    customer_id = _customer_id(actor)
    ctx, _skus = build_context(session, actor=actor, request=request)
    owner_id, customer_store_id = customers.assignment_of(session, merchant_id=actor.merchant_id,
                                                          customer_id=customer_id)
    settings = settings_from(ctx.settings)
    now = clock.now()
    fulfilment = ctx.fulfilment
    order = Order(
        merchant_id=actor.merchant_id, order_no=new_order_no(now), customer_id=customer_id,
        owner_id=owner_id,
        store_id=fulfilment.store_id if fulfilment.type == "pickup" else customer_store_id,
        status=OrderStatus.PENDING_PAYMENT.value, fulfilment_type=fulfilment.type, fulfilment=fulfilment.snapshot(),
        pickup_store_id=fulfilment.store_id, leader_id=fulfilment.leader_id,
        subtotal_cents=ctx.subtotal_cents, adjustments_cents=ctx.adjustments_cents,
        shipping_cents=ctx.shipping_cents, total_cents=ctx.total_cents, payable_cents=ctx.payable_cents,
        adjustments=[a.as_dict() for a in ctx.adjustments], payment_parts=[p.as_dict() for p in ctx.payment_parts],
        attribution={}, promotion={k: v for k, v in (ctx.promotion or {}).items() if v is not None},
        note=request.note, created_at=now, updated_at=now,
        expires_at=now + dt.timedelta(minutes=settings.order_expiry_minutes),
    )
    # Who brought the sale (last-touch sharer, bound guide and store, channel, campaign, live session),
    # fixed now: nothing rewrites it later.
    order.attribution = attribution.order_attribution(session, merchant_id=actor.merchant_id, customer_id=customer_id,
                                                      share_code=ctx.share_code, now=now,
                                                      assignment=(owner_id, customer_store_id))
    # The order, then its lines, each one INSERT … RETURNING (no unit-of-work flush).
    add_written(session, [order])
    order_lines = [
        OrderLine(merchant_id=order.merchant_id, order_id=order.id, sku_id=line.sku_id, product_id=line.product_id,
                  category_id=line.category_id, title=line.title[:200], spec=line.spec,
                  image_url=(line.image_url or "")[:500], unit_price_cents=line.unit_price_cents,
                  quantity=line.quantity, line_total_cents=line.subtotal_cents, discount_cents=line.adjustment_cents,
                  paid_cents=line.amount_cents, refunded_quantity=0, refunded_cents=0)
        for line in ctx.lines
    ]
    add_written(session, order_lines)
    event_line_list = [ev.EventLine(order_line_id=line.id, sku_id=line.sku_id, product_id=line.product_id,
                                    quantity=line.quantity, paid_cents=line.paid_cents) for line in order_lines]
    add_history(session, order, from_status=None, to_status=order.status, actor=actor, at=now)
    # Attribution's copy of the order and its funnel row, in this transaction: the event's handlers would
    # write just these after the commit, in a transaction of their own.
    handled: tuple[str, ...] = ()
    if (order.kind or "goods") == "goods":
        funnel.record_order_created(session, merchant_id=order.merchant_id, order_id=order.id,
                                    order_no=order.order_no, customer_id=customer_id, snapshot=order.attribution,
                                    total_cents=order.total_cents, created_at=order.created_at)
        handled = funnel.ORDER_CREATED_HANDLERS
    emit(session, ev.ORDER_CREATED, ev.OrderCreated(
        order_id=order.id, order_no=order.order_no, customer_id=customer_id, owner_id=order.owner_id,
        store_id=order.store_id, fulfilment_type=order.fulfilment_type, total_cents=order.total_cents,
        payable_cents=order.payable_cents, lines=event_line_list, adjustments=list(order.adjustments),
        payment_parts=list(order.payment_parts), attribution=dict(order.attribution)), merchant_id=order.merchant_id,
        handled=handled)
    pricing.commit_contributions(session, ctx, order_id=order.id, order_no=order.order_no)
    if from_cart:
        cart_service.remove_skus(session, merchant_id=order.merchant_id, customer_id=customer_id,
                                 sku_ids=[line.sku_id for line in ctx.lines])
    wanted = [(line.sku_id, line.quantity) for line in ctx.lines]
    if reserve_last and order.payable_cents > 0:
        last_in_transaction(session, lambda s: reserve_stock(s, order, wanted, actor=actor))
        return order, order_lines
    reserve_stock(session, order, wanted, actor=actor)
    if order.payable_cents == 0:
        apply_payment(session, order, payment_id=None, amount_cents=0, paid_at=now, actor=actor,
                      note="Nothing to pay.")
    return order, order_lines


def reserve_stock(session: Session, order: Order, wanted: list[tuple[int, int]], *, actor: Principal | None) -> None:
    """One conditional decrement per SKU through the stock ledger, in SKU-id order. The order is
    new in this transaction, so its reserve keys are too (`catalog.reserve_new`: two statements)."""
    for sku_id, quantity in sorted(wanted):
        catalog.reserve_new(session, merchant_id=order.merchant_id, sku_id=sku_id, quantity=quantity,
                            idempotency_key=f"order:{order.id}:reserve:{sku_id}", note=order.order_no,
                            ref_type="order", ref_id=order.id, actor=actor)

