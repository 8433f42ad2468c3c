"""A year of demo orders for the demo customers, so the console, the order pages and the customer
stats are lively.

Realistic mix: most customers have 0–3 orders, a few loyal ones many; delivery and store pickup;
statuses follow the age of the order (old ones completed, recent ones paid, shipped or ready for
pickup), some cancelled (not paid in time, or by the customer), a few refunded whole or in part
(with their refund requests, refund lines and provider refunds), a few refund requests waiting for
review. Every order has its history rows; every paid order one succeeded sandbox payment for
exactly its payable amount.

Historical orders do NOT move today's stock: the catalogue's opening stock is "what is on the
shelf now", and these orders were sold from earlier deliveries. For the same reason no order is
left pending payment (its expiry would release units that were never reserved) and no refund
restocks. No outbox events are written for this history (nothing must react to it now).

Customer stats (paid orders, net spend, refunded, first/last purchase, last/max order) are
computed from exactly these orders and refunds and written through `customers.bulk_set_stats`,
together with the stat-change records that keep later stat updates idempotent.

Deterministic: only ctx.rng and ctx.now. Bulk inserts (a handful of statements per table).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from siyu.attribution.service import funnel as attribution_funnel
from siyu.attribution.service import ownership as attribution_ownership
from siyu.catalog import service as catalog
from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.demo import DemoContext
from siyu.customers import service as customers
from siyu.customers.models import Customer
from siyu.merchants import service as merchants
from siyu.orders.models import CustomerAddress, Order, OrderHistory, OrderLine, RefundLine, RefundRequest
from siyu.orders.pricing import shipping_rules
from siyu.orders.service.common import DEFAULT_AFTER_SALES_DAYS, DEFAULT_AUTO_COMPLETE_DAYS, settings_from
from siyu.orders.service.refunds import unit_prefix
from siyu.orders.states import OrderStatus as S
from siyu.payments.models import Payment, PaymentRefund

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
CARRIERS = ("顺丰速运", "中通快递", "圆通速递", "韵达快递", "京东物流", "EMS")
CARRIER_PREFIX = {"顺丰速运": "SF", "中通快递": "ZTO", "圆通速递": "YT", "韵达快递": "YD", "京东物流": "JD", "EMS": "EMS"}
REFUND_REASONS = ("尺码不合适", "不喜欢/不想要了", "商品与描述不符", "收到商品破损", "拍错了/多拍了", "质量问题")
PARTIAL_REASONS = ("其中一件有瑕疵", "少发了一件", "多买了一件", "颜色和图片有差异")
RECEIVER_NAMES = ("王丽", "李强", "张敏", "刘洋", "陈静", "杨帆", "赵磊", "黄婷", "周杰", "吴芳", "徐明", "孙悦")
STREETS = ("人民路", "中山路", "解放路", "建设路", "和平路", "文化路", "新华路", "长江路", "湖滨路", "学院路")
PAID_STATUSES = (S.PAID, S.SHIPPED, S.READY_FOR_PICKUP, S.COMPLETED, S.REFUNDING, S.REFUNDED)


@dataclasses.dataclass
class _Line:
    sku_id: int
    product_id: int
    title: str
    spec: dict[str, str]
    image_url: str
    unit_price_cents: int
    quantity: int

    @property
    def total(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclasses.dataclass
class _Refund:
    at: dt.datetime
    created_at: dt.datetime
    status: str  # "refunded" or "pending"
    whole: bool
    amount_cents: int
    shipping_cents: int
    reason: str
    lines: list[tuple[int, int, int]]  # (line index, quantity, amount)
    reviewer_id: int | None


@dataclasses.dataclass
class _Order:
    customer_id: int
    owner_id: int | None
    store_id: int | None
    order_no: str
    fulfilment_type: str
    fulfilment: dict[str, Any]
    pickup_store_id: int | None
    lines: list[_Line]
    shipping_cents: int
    created_at: dt.datetime
    status: str = S.PENDING_PAYMENT.value
    status_before_refund: str | None = None
    pickup_code: str | None = None
    carrier: str = ""
    tracking_no: str = ""
    cancel_reason: str = ""
    paid_at: dt.datetime | None = None
    shipped_at: dt.datetime | None = None
    ready_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    refunded_at: dt.datetime | None = None
    refunded_cents: int = 0
    history: list[tuple[str | None, str, str, int | None, str, dt.datetime]] = dataclasses.field(default_factory=list)
    refunds: list[_Refund] = dataclasses.field(default_factory=list)
    line_refunded: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # per line (qty, cents)

    @property
    def subtotal(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal + self.shipping_cents

    def move(self, to: str, at: dt.datetime, actor_type: str, actor_id: int | None, note: str = "") -> None:
        self.history.append((self.status, to, actor_type, actor_id, note, at))
        self.status = to

    def note(self, at: dt.datetime, actor_type: str, actor_id: int | None, note: str) -> None:
        self.history.append((self.status, self.status, actor_type, actor_id, note, at))


def _orders_per_customer(rng: Any) -> int:
    roll = rng.random()
    if roll < 0.36:
        return 0
    if roll < 0.62:
        return 1
    if roll < 0.78:
        return 2
    if roll < 0.88:
        return 3
    if roll < 0.96:
        return rng.randint(4, 7)
    return rng.randint(8, 24)  # the loyal ones


def _address(rng: Any, region: str, phone: str) -> dict[str, str]:
    city, _, district = (region or "上海 黄浦").partition(" ")
    province = f"{city}市" if city in ("上海", "北京", "天津", "重庆") else \
        {"杭州": "浙江省", "宁波": "浙江省", "苏州": "江苏省", "南京": "江苏省", "广州": "广东省", "深圳": "广东省",
         "成都": "四川省", "武汉": "湖北省"}.get(city, "上海市")
    return {"name": rng.choice(RECEIVER_NAMES), "phone": phone or f"139{rng.randrange(10**8):08d}",
            "province": province, "city": f"{city}市", "district": f"{district}区" if district else "",
            "detail": f"{rng.choice(STREETS)}{rng.randint(1, 999)}号{rng.randint(1, 30)}幢{rng.randint(101, 2802)}室"}


def _order_no(rng: Any, at: dt.datetime, used: set[str]) -> str:
    local = clock.local(at)
    assert local is not None
    while True:
        number = f"{local:%y%m%d}{rng.randrange(10**10):010d}{rng.randrange(10**4):04d}"
        if number not in used:
            used.add(number)
            return number


def _pickup_code(rng: Any, used: set[str]) -> str:
    while True:
        code = f"{rng.randrange(10**6):06d}"
        if code not in used:
            used.add(code)
            return code


def _lines(rng: Any, skus: list[Any]) -> list[_Line]:
    count = rng.choices((1, 2, 3, 4), weights=(62, 25, 9, 4))[0]
    picked = rng.sample(skus, min(count, len(skus)))
    return [_Line(sku_id=s.sku_id, product_id=s.product_id, title=s.title, spec=dict(s.spec), image_url=s.image or "",
                  unit_price_cents=s.price_cents, quantity=rng.choices((1, 2, 3), weights=(78, 17, 5))[0])
            for s in picked]


def _live(o: _Order, rng: Any, now: dt.datetime, *, staff_of: dict[int | None, list[int]], admin_id: int | None,
          auto_days: int, after_sales_days: int, codes: set[str]) -> None:
    """Play the order's life forward from its creation, stopping at `now`."""
    t = o.created_at
    o.history.append((None, S.PENDING_PAYMENT.value, "customer", o.customer_id, "", t))
    if rng.random() < 0.07:  # never paid: expired, or cancelled by the customer
        if rng.random() < 0.6:
            o.cancel_reason = "expired"
            o.cancelled_at = t + 15 * MINUTE + rng.randint(0, 59) * dt.timedelta(seconds=1)
            o.move(S.CANCELLED, o.cancelled_at, "system", None, "Not paid in time.")
        else:
            o.cancel_reason = "customer_cancelled"
            o.cancelled_at = t + rng.randint(1, 12) * MINUTE
            o.move(S.CANCELLED, o.cancelled_at, "customer", o.customer_id, "customer_cancelled")
        return
    o.paid_at = t + rng.randint(20, 600) * dt.timedelta(seconds=1)
    if o.paid_at >= now:
        o.paid_at = now - MINUTE
    o.move(S.PAID, o.paid_at, "system", None)
    staff = staff_of.get(o.store_id) or staff_of.get(None) or ([admin_id] if admin_id else [None])

    # a whole refund before anything was handed over (changed their mind)
    if rng.random() < 0.015 and o.paid_at + 2 * HOUR < now:
        asked = o.paid_at + rng.randint(10, 180) * MINUTE
        _refund_whole(o, rng, asked, min(now - MINUTE, asked + rng.randint(1, 20) * HOUR), staff, include_shipping=True)
        return

    handed: dt.datetime | None
    if o.fulfilment_type == "pickup":
        o.pickup_code = _pickup_code(rng, codes)
        o.ready_at = o.paid_at
        o.move(S.READY_FOR_PICKUP, o.paid_at, "system", None)
        picked = o.ready_at + rng.choice((2, 5, 20, 30, 48, 72)) * HOUR * rng.uniform(0.5, 1.0)
        if picked >= now:
            return  # still waiting at the store
        o.completed_at = picked
        o.move(S.COMPLETED, picked, "staff", rng.choice(staff), "Picked up (verified).")
        handed = picked
    else:
        shipped = o.paid_at + rng.randint(2, 40) * HOUR
        if shipped >= now:
            return  # paid, not shipped yet
        o.carrier = rng.choice(CARRIERS)
        o.tracking_no = f"{CARRIER_PREFIX[o.carrier]}{rng.randrange(10**12):012d}"
        o.shipped_at = shipped
        o.move(S.SHIPPED, shipped, "staff", rng.choice(staff), f"{o.carrier} {o.tracking_no}")
        if rng.random() < 0.6:
            done, actor, who, note = shipped + rng.randint(30, 130) * HOUR, "customer", o.customer_id, "Receipt confirmed."
        else:
            done, actor, who, note = shipped + auto_days * DAY, "system", None, \
                f"Completed {auto_days} days after shipping."
        if done >= now:
            return  # on its way
        o.completed_at = done
        o.move(S.COMPLETED, done, actor, who, note)
        handed = done

    # after-sales within the window
    closes = handed + after_sales_days * DAY
    roll = rng.random()
    units = sum(line.quantity for line in o.lines)
    if roll < 0.12 and units > 1:
        asked = handed + rng.uniform(0.1, after_sales_days - 0.5) * DAY
        if asked < now:
            decided = asked + rng.randint(2, 40) * HOUR
            if decided >= now or (closes > now and rng.random() < 0.3):
                _refund_pending(o, rng, asked, whole=rng.random() < 0.3)
            else:
                _refund_part(o, rng, asked, decided, staff)
    elif roll > 0.985:
        asked = handed + rng.uniform(0.1, after_sales_days - 0.5) * DAY
        if asked < now:
            decided = asked + rng.randint(2, 40) * HOUR
            if decided < now:
                _refund_whole(o, rng, asked, decided, staff, include_shipping=o.shipped_at is None)
            else:
                _refund_pending(o, rng, asked, whole=True)


def _refund_whole(o: _Order, rng: Any, asked: dt.datetime, decided: dt.datetime, staff: list[Any], *,
                  include_shipping: bool) -> None:
    reason = rng.choice(REFUND_REASONS)
    lines = [(i, line.quantity, line.total) for i, line in enumerate(o.lines)]
    shipping = o.shipping_cents if include_shipping else 0
    amount = sum(a for _, _, a in lines) + shipping
    reviewer = rng.choice(staff)
    o.status_before_refund = o.status
    o.refunds.append(_Refund(at=decided, created_at=asked, status="refunded", whole=True, amount_cents=amount,
                             shipping_cents=shipping, reason=reason, lines=lines, reviewer_id=reviewer))
    o.move(S.REFUNDING, asked, "customer", o.customer_id, f"Refund request: {reason}")
    o.refunded_cents += amount
    o.refunded_at = decided
    o.line_refunded = [(line.quantity, line.total) for line in o.lines]
    o.move(S.REFUNDED, decided, "staff", reviewer, f"{amount} cents back.")


def _refund_part(o: _Order, rng: Any, asked: dt.datetime, decided: dt.datetime, staff: list[Any]) -> None:
    """Some units of one line (never all the order's units: that is a whole refund)."""
    i = rng.randrange(len(o.lines))
    line = o.lines[i]
    most = line.quantity - 1 if len(o.lines) == 1 else line.quantity
    if most < 1:
        return
    qty = rng.randint(1, most)
    amount = unit_prefix(line.total, line.quantity, qty)
    reason = rng.choice(PARTIAL_REASONS)
    reviewer = rng.choice(staff)
    o.refunds.append(_Refund(at=decided, created_at=asked, status="refunded", whole=False, amount_cents=amount,
                             shipping_cents=0, reason=reason, lines=[(i, qty, amount)], reviewer_id=reviewer))
    o.note(asked, "customer", o.customer_id, f"Refund request for {amount} cents: {reason}")
    o.refunded_cents += amount
    o.line_refunded = [(0, 0)] * len(o.lines)
    o.line_refunded[i] = (qty, amount)
    o.note(decided, "staff", reviewer, f"{amount} cents back.")


def _refund_pending(o: _Order, rng: Any, asked: dt.datetime, *, whole: bool) -> None:
    if whole:
        lines = [(i, line.quantity, line.total) for i, line in enumerate(o.lines)]
        shipping = o.shipping_cents if o.shipped_at is None else 0
        reason = rng.choice(REFUND_REASONS)
        o.status_before_refund = o.status
        o.move(S.REFUNDING, asked, "customer", o.customer_id, f"Refund request: {reason}")
    else:
        i = rng.randrange(len(o.lines))
        qty = 1
        lines = [(i, qty, unit_prefix(o.lines[i].total, o.lines[i].quantity, qty))]
        shipping = 0
        reason = rng.choice(PARTIAL_REASONS)
        o.note(asked, "customer", o.customer_id, f"Refund request for {lines[0][2]} cents: {reason}")
    amount = sum(a for _, _, a in lines) + shipping
    o.refunds.append(_Refund(at=asked, created_at=asked, status="pending", whole=whole, amount_cents=amount,
                             shipping_cents=shipping, reason=reason, lines=lines, reviewer_id=None))


def seed(session: Session, ctx: DemoContext) -> None:
    rng, now, merchant_id = ctx.rng, ctx.now, ctx.merchant_id
    on_sale = ctx.data.get("on_sale_skus") or []
    if not ctx.data.get("customer_ids") or not on_sale:
        return
    system = system_principal(merchant_id)
    merchant = merchants.get_merchant(session, merchant_id)
    settings = settings_from(merchant.settings)
    auto_days = settings.auto_complete_days or DEFAULT_AUTO_COMPLETE_DAYS
    after_sales_days = settings.after_sales_days or DEFAULT_AFTER_SALES_DAYS
    rules = shipping_rules(merchant.settings)
    sku_info = catalog.get_skus_for_checkout(session, merchant_id=merchant_id, sku_ids=[s["sku_id"] for s in on_sale])
    skus = [sku_info[s["sku_id"]] for s in on_sale if s["sku_id"] in sku_info]
    stores = {sid: merchants.get_store(session, sid, actor=system) for sid in ctx.store_ids}
    admin_id = ctx.admin.subject_id if ctx.admin else None
    staff_of: dict[int | None, list[int]] = {}
    for guide_id, store_id in ctx.guide_store.items():
        staff_of.setdefault(store_id, []).append(guide_id)
    staff_of[None] = [admin_id] if admin_id else list(ctx.guide_ids[:1])

    people = session.execute(
        select(Customer.id, Customer.owner_id, Customer.store_id, Customer.created_at, Customer.region, Customer.phone)
        .where(Customer.merchant_id == merchant_id).order_by(Customer.id)).all()

    year_ago = now - 365 * DAY
    used_numbers: set[str] = set()
    codes: set[str] = set()
    orders: list[_Order] = []
    addresses: list[dict[str, Any]] = []
    for cid, owner_id, home_store, joined, region, phone in people:
        n = _orders_per_customer(rng)
        if n == 0:
            continue
        start = max(joined, year_ago)
        span = (now - 10 * MINUTE - start).total_seconds()
        if span <= 0:
            continue
        address = _address(rng, region, phone)
        likes_pickup = rng.random() < (0.55 if home_store else 0.15)
        ever_delivered = False
        for t in sorted(start + dt.timedelta(seconds=rng.uniform(0, span)) for _ in range(n)):
            pickup = likes_pickup and rng.random() < 0.8
            lines = _lines(rng, skus)
            if pickup:
                store_id = home_store if home_store in stores else rng.choice(ctx.store_ids)
                store = stores[store_id]
                fulfilment = {"type": "pickup", "store_id": store_id,
                              "store": {"name": store.name, "address": store.address, "phone": store.phone,
                                        "opening_hours": store.opening_hours}}
                shipping = 0
            else:
                ever_delivered = True
                fulfilment = {"type": "delivery", "address": dict(address)}
                goods = sum(line.total for line in lines)
                rule = rules.for_province(address["province"])
                shipping = 0 if rule.free_over_cents is not None and goods >= rule.free_over_cents else rule.flat_cents
            o = _Order(customer_id=cid, owner_id=owner_id, store_id=store_id if pickup else home_store,
                       order_no=_order_no(rng, t, used_numbers), fulfilment_type=fulfilment["type"],
                       fulfilment=fulfilment, pickup_store_id=store_id if pickup else None, lines=lines,
                       shipping_cents=shipping, created_at=t)
            _live(o, rng, now, staff_of=staff_of, admin_id=admin_id, auto_days=auto_days,
                  after_sales_days=after_sales_days, codes=codes)
            orders.append(o)
        if ever_delivered:
            addresses.append({"merchant_id": merchant_id, "customer_id": cid, **address, "is_default": True,
                              "created_at": start})
    if not orders:
        return
    orders.sort(key=lambda o: o.created_at)
    _write(session, ctx, orders, addresses)


def _insert_returning_ids(session: Session, model: Any, rows: list[dict[str, Any]], chunk: int = 2000) -> list[int]:
    """INSERT the rows, returning their ids in order. Core inserts (the ORM's bulk insert splits rows
    whose None columns differ into separate statements), in chunks (one huge INSERT … RETURNING of a
    wide table is much slower)."""
    table = model.__table__
    ids: list[int] = []
    for start in range(0, len(rows), chunk):
        ids.extend(session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                   rows[start:start + chunk]))
    return ids


def _write(session: Session, ctx: DemoContext, orders: list[_Order], addresses: list[dict[str, Any]]) -> None:
    merchant_id = ctx.merchant_id
    if addresses:
        session.execute(insert(CustomerAddress.__table__), addresses)
    # Each order's attribution snapshot, as checkout would have written it (last touch, guide, store, referrer).
    snapshots = attribution_ownership.bulk_snapshots(session, merchant_id=merchant_id, orders=[
        attribution_ownership.OrderFacts(customer_id=o.customer_id, created_at=o.created_at, guide_id=o.owner_id,
                                         store_id=o.store_id) for o in orders])
    order_rows = []
    for o, snapshot in zip(orders, snapshots, strict=True):
        paid = o.paid_at is not None
        order_rows.append({
            "merchant_id": merchant_id, "order_no": o.order_no, "customer_id": o.customer_id, "owner_id": o.owner_id,
            "store_id": o.store_id, "status": o.status, "status_before_refund": o.status_before_refund,
            "fulfilment_type": o.fulfilment_type, "fulfilment": o.fulfilment, "pickup_store_id": o.pickup_store_id,
            "leader_id": None, "pickup_code": o.pickup_code, "carrier": o.carrier, "tracking_no": o.tracking_no,
            "subtotal_cents": o.subtotal, "adjustments_cents": 0, "shipping_cents": o.shipping_cents,
            "total_cents": o.total, "payable_cents": o.total, "paid_cents": o.total if paid else 0,
            "refunded_cents": o.refunded_cents, "adjustments": [], "payment_parts": [], "attribution": snapshot,
            "note": "", "cancel_reason": o.cancel_reason, "payment_id": None,
            "created_at": o.created_at, "updated_at": o.history[-1][5], "expires_at": o.created_at + 15 * MINUTE,
            "paid_at": o.paid_at, "shipped_at": o.shipped_at, "ready_at": o.ready_at, "completed_at": o.completed_at,
            "cancelled_at": o.cancelled_at, "refunded_at": o.refunded_at,
        })
    order_ids = _insert_returning_ids(session, Order, order_rows)
    attribution_ownership.record_orders(session, merchant_id=merchant_id, rows=[
        {"order_id": oid, "order_no": o.order_no, "customer_id": o.customer_id, "snapshot": snapshot,
         "total_cents": o.total, "paid_cents": o.total if o.paid_at else 0, "created_at": o.created_at,
         "paid_at": o.paid_at} for oid, o, snapshot in zip(order_ids, orders, snapshots, strict=True)])

    line_rows = []
    for oid, o in zip(order_ids, orders, strict=True):
        refunded = o.line_refunded or [(0, 0)] * len(o.lines)
        for line, (rq, rc) in zip(o.lines, refunded, strict=True):
            line_rows.append({
                "merchant_id": merchant_id, "order_id": oid, "sku_id": line.sku_id, "product_id": line.product_id,
                "category_id": None, "title": line.title[:200], "spec": line.spec, "image_url": line.image_url[:500],
                "unit_price_cents": line.unit_price_cents, "quantity": line.quantity, "line_total_cents": line.total,
                "discount_cents": 0, "paid_cents": line.total, "refunded_quantity": rq, "refunded_cents": rc})
    line_ids = _insert_returning_ids(session, OrderLine, line_rows)
    ids_of: list[list[int]] = []
    k = 0
    for o in orders:
        ids_of.append(line_ids[k:k + len(o.lines)])
        k += len(o.lines)

    session.execute(insert(OrderHistory.__table__), [
        {"merchant_id": merchant_id, "order_id": oid, "from_status": frm, "to_status": to, "actor_type": actor,
         "actor_id": who, "note": note[:500], "created_at": at}
        for oid, o in zip(order_ids, orders, strict=True) for frm, to, actor, who, note, at in o.history])

    # one succeeded sandbox payment per paid order, then the orders point at it
    paid = [(oid, o) for oid, o in zip(order_ids, orders, strict=True) if o.paid_at is not None]
    payment_rows = []
    for oid, o in paid:
        money_back = sum(r.amount_cents for r in o.refunds if r.status == "refunded")
        local = clock.local(o.paid_at)
        assert local is not None and o.paid_at is not None
        payment_rows.append({
            "merchant_id": merchant_id, "customer_id": o.customer_id, "order_id": oid, "order_no": o.order_no,
            "method": "sandbox", "description": (o.lines[0].title + (" …" if len(o.lines) > 1 else ""))[:127],
            "amount_cents": o.total, "refunded_cents": money_back, "status": "succeeded",
            "out_trade_no": f"P{o.order_no}", "provider_txn_id": f"SBX{o.order_no}",
            "provider_data": {"demo": True}, "created_at": o.paid_at - MINUTE, "updated_at": o.paid_at,
            "expires_at": o.created_at + 15 * MINUTE, "paid_at": o.paid_at, "closed_at": None})
    payment_ids = _insert_returning_ids(session, Payment, payment_rows)
    payment_of = {oid: pid for (oid, _o), pid in zip(paid, payment_ids, strict=True)}
    if payment_of:
        session.execute(update(Order).execution_options(synchronize_session=False),
                        [{"id": oid, "payment_id": pid} for oid, pid in payment_of.items()])

    # refunds: requests, their lines, and the provider refunds of those already done
    refunds = [(oid, o, r) for oid, o in zip(order_ids, orders, strict=True) for r in o.refunds]
    if refunds:
        refund_ids = _insert_returning_ids(session, RefundRequest, [
            {"merchant_id": merchant_id, "order_id": oid, "customer_id": o.customer_id, "owner_id": o.owner_id,
             "store_id": o.store_id, "status": r.status, "whole_order": r.whole, "amount_cents": r.amount_cents,
             "money_cents": r.amount_cents, "parts_cents": 0, "shipping_cents": r.shipping_cents, "reason": r.reason,
             "photos": [], "reject_reason": "", "restock": False, "source": "customer", "payment_refund_id": None,
             "reviewed_by": r.reviewer_id, "reviewed_at": r.at if r.status == "refunded" else None,
             "refunded_at": r.at if r.status == "refunded" else None, "created_at": r.created_at}
            for oid, o, r in refunds])
        index = {oid: i for i, oid in enumerate(order_ids)}
        session.execute(insert(RefundLine.__table__), [
            {"merchant_id": merchant_id, "refund_id": rid, "order_line_id": ids_of[index[oid]][li], "quantity": qty,
             "amount_cents": amount}
            for rid, (oid, _o, r) in zip(refund_ids, refunds, strict=True) for li, qty, amount in r.lines])
        done = [(rid, oid, r) for rid, (oid, _o, r) in zip(refund_ids, refunds, strict=True) if r.status == "refunded"]
        if done:
            provider_ids = _insert_returning_ids(session, PaymentRefund, [
                    {"merchant_id": merchant_id, "payment_id": payment_of[oid], "amount_cents": r.amount_cents,
                     "status": "succeeded", "refund_key": f"after_sale:{rid}", "out_refund_no": f"R{rid:012d}",
                     "reason": r.reason, "provider_refund_id": f"SBXR{rid:012d}", "error": None, "attempts": 1,
                     "created_at": r.at, "finished_at": r.at} for rid, oid, r in done])
            session.execute(update(RefundRequest).execution_options(synchronize_session=False),
                            [{"id": rid, "payment_refund_id": pid} for (rid, _oid, _r), pid in zip(done, provider_ids,
                                                                                                   strict=True)])

    _write_stats(session, merchant_id, order_ids, orders, refunds_done=[
        (oid, o, r, rid) for rid, (oid, o, r) in zip(refund_ids, refunds, strict=True) if r.status == "refunded"]
        if refunds else [])
    ctx.data["order_ids"] = order_ids
    # The funnel (bulk orders emit no events), each row with its customer's last touch: what the buyer browsed
    # (most through the cart, every fifth with "buy now"), the order and the payment; and, beside each order,
    # shoppers who left: two anonymous visitors (one only saw the product in a list) and, for every other order,
    # a customer who put it in the cart an hour before and did not buy.
    customer_ids = ctx.data["customer_ids"]
    step = attribution_funnel.OrderStep
    visit = attribution_funnel.Visit
    attribution_funnel.record_order_steps(session, merchant_id=merchant_id, orders=[
        step(order_id=oid, customer_id=o.customer_id, total_cents=o.total, created_at=o.created_at,
             paid_cents=o.total if o.paid_at else 0, paid_at=o.paid_at,
             browsed=("exposure", "view") if i % 5 == 0 else ("exposure", "view", "add_to_cart"))
        for i, (oid, o) in enumerate(zip(order_ids, orders, strict=True))], visits=[
        v for i, o in enumerate(orders) for v in (
            visit(at=o.created_at - 30 * MINUTE, steps=("exposure",), visitor_id=f"demo-look{merchant_id}-{i:07d}a"),
            visit(at=o.created_at - 20 * MINUTE, steps=("exposure", "view"), visitor_id=f"demo-look{merchant_id}-{i:07d}b"),
            *((visit(at=o.created_at - 60 * MINUTE, steps=("exposure", "view", "add_to_cart"),
                     customer_id=customer_ids[(i * 7919) % len(customer_ids)]),) if i % 2 == 0 else ()))])
    session.flush()


def _write_stats(session: Session, merchant_id: int, order_ids: list[int], orders: list[_Order],
                 refunds_done: list[tuple[int, _Order, _Refund, int]]) -> None:
    """Customer stats exactly as record_paid_order / record_refund would have left them."""
    stats: dict[int, dict[str, Any]] = {}
    changes: list[dict[str, Any]] = []
    for oid, o in zip(order_ids, orders, strict=True):
        if o.paid_at is None:
            continue
        s = stats.setdefault(o.customer_id, {"paid_orders": 0, "total_spent_cents": 0, "refunded_cents": 0,
                                             "first_purchase_at": None, "last_purchase_at": None,
                                             "last_order_cents": 0, "max_order_cents": 0})
        s["paid_orders"] += 1
        s["total_spent_cents"] += o.total
        if s["first_purchase_at"] is None or o.paid_at < s["first_purchase_at"]:
            s["first_purchase_at"] = o.paid_at
        if s["last_purchase_at"] is None or o.paid_at >= s["last_purchase_at"]:
            s["last_purchase_at"] = o.paid_at
            s["last_order_cents"] = o.total
        s["max_order_cents"] = max(s["max_order_cents"], o.total)
        s["updated_at"] = max(s.get("updated_at") or o.paid_at, o.paid_at)
        changes.append({"customer_id": o.customer_id, "order_id": oid, "kind": "paid", "ref_id": 0,
                        "amount_cents": o.total, "happened_at": o.paid_at})
    for oid, o, r, rid in refunds_done:
        s = stats[o.customer_id]
        s["total_spent_cents"] -= r.amount_cents
        s["refunded_cents"] += r.amount_cents
        s["updated_at"] = max(s["updated_at"], r.at)
        changes.append({"customer_id": o.customer_id, "order_id": oid, "kind": "refund", "ref_id": rid,
                        "amount_cents": r.amount_cents, "happened_at": r.at})
    if stats:
        customers.bulk_set_stats(session, merchant_id=merchant_id, stats=stats, changes=changes)
