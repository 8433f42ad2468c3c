"""Group-buying demo: compounds (one a new development), community groups, six leaders on two routes
(one application waiting for review), a past wave cut off, delivered and mostly picked up (its
purchase list, sorting list and manifest exist), and an open wave. Everything goes through the
services, on a few dozen orders, so it stays fast. The first leader is the demo customer with
openid `demo-openid-<merchant>-000001`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.auth import Principal, system_principal
from siyu.core.demo import DemoContext
from siyu.core.errors import AppError, Conflict
from siyu.groupbuy.service import community, cutoff, delivery, leaders, sync, waves
from siyu.groupbuy.service.community import CompoundIn
from siyu.groupbuy.service.leaders import LeaderApplication
from siyu.groupbuy.service.waves import WaveIn, WaveItemIn
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest

DAY = dt.timedelta(days=1)
COMPOUNDS = [  # name, region, lat, lng, households, move-in date in days from now (new development)
    ("阳光花园", "浦东", 31.2231, 121.5440, 1200, None),
    ("世纪公寓", "浦东", 31.2290, 121.5302, 860, None),
    ("滨江苑", "浦东", 31.2365, 121.5075, 640, None),
    ("梅陇新村", "闵行", 31.1282, 121.4260, 1500, None),
    ("莘庄名邸", "闵行", 31.1125, 121.3851, 980, None),
    ("临港云境", "浦东", 30.9103, 121.9320, 2200, 120),
]
LEADERS = [  # compound index, route, name, point name
    (0, "东线", "王秀英", "阳光花园便利店"),
    (1, "东线", "李建华", "世纪公寓快递驿站"),
    (2, "东线", "张丽", "滨江苑物业前台"),
    (3, "西线", "刘芳", "梅陇新村水果店"),
    (4, "西线", "陈静", "莘庄名邸门卫室"),
]


def _customer(customer_id: int, merchant_id: int) -> Principal:
    return Principal(merchant_id=merchant_id, kind="customer", subject_id=customer_id)


def seed(session: Session, ctx: DemoContext) -> None:
    customer_ids = list(ctx.data.get("customer_ids") or [])
    on_sale = list(ctx.data.get("on_sale_skus") or [])
    if ctx.admin is None or len(customer_ids) < 40 or len(on_sale) < 4:
        return
    rng, now, merchant_id = ctx.rng, ctx.now, ctx.merchant_id
    admin = ctx.admin
    past_start = now - 9 * DAY
    with clock.frozen(past_start - DAY):
        compounds = [community.create_compound(session, actor=admin, data=CompoundIn(
            name=name, address=f"上海市{region}区{name}", region=region, latitude=lat, longitude=lng,
            households=households, delivery_date=(clock.today_local() + move_in * DAY) if move_in else None))
            for name, region, lat, lng, households, move_in in COMPOUNDS]
        points = []
        for n, (ci, route, name, point_name) in enumerate(LEADERS):
            c = compounds[ci]
            points.append(leaders.create_leader(session, actor=admin, customer_id=customer_ids[n + 1], route=route,
                                                application=LeaderApplication(
                                                    name=name, phone=f"1390000{n:04d}", point_name=point_name,
                                                    address=f"{c.address} {n + 1} 号", compound_id=c.id,
                                                    latitude=c.latitude + 0.0007 * (n % 3),
                                                    longitude=c.longitude - 0.0005 * (n % 2),
                                                    opening_hours="08:00-20:30", region=c.region)))
        community.create_group(session, actor=admin, name="阳光花园邻里团", compound_id=compounds[0].id,
                               leader_id=points[0].id, owner_name="王秀英", member_count=386)
        community.create_group(session, actor=admin, name="世纪公寓生鲜群", compound_id=compounds[1].id,
                               leader_id=points[1].id, owner_name="李建华", member_count=214)
        community.create_group(session, actor=admin, name="梅陇好物分享", compound_id=compounds[3].id,
                               leader_id=points[3].id, owner_name="刘芳", member_count=455)
        # An application waiting for review (from the shop).
        leaders.apply(session, actor=_customer(customer_ids[7], merchant_id), application=LeaderApplication(
            name="赵敏", phone="13900009999", point_name="滨江苑2期小超市", address="上海市浦东区滨江苑 2 期",
            compound_id=compounds[2].id, latitude=31.2372, longitude=121.5081, opening_hours="09:00-21:00"))

    chosen = rng.sample(on_sale, 4)
    items = [WaveItemIn(sku_id=s["sku_id"], price_cents=max(100, s["price_cents"] * 8 // 10 // 10 * 10),
                        allocation=400, per_customer_limit=5 if i == 0 else None) for i, s in enumerate(chosen)]
    buyers = customer_ids[10:10 + max(12, ctx.count(18))]

    # The past wave: orders, cut-off, delivery, pickups.
    with clock.frozen(past_start):
        past = waves.create_wave(session, actor=admin, data=WaveIn(
            title="上周鲜果团", description="产地直发，次日到自提点。", starts_at=past_start,
            cutoff_at=past_start + 2 * DAY, delivery_date=clock.local(past_start + 3 * DAY).date(),  # type: ignore[union-attr]
            items=items, commission_bps=1000))
        waves.open_wave(session, past.id, actor=admin)
    placed = _buy(session, ctx, wave_items=items, buyers=buyers, points=points, at=past_start + DAY / 2)
    with clock.frozen(past.cutoff_at + dt.timedelta(minutes=1)):
        cutoff.close_wave(session, past.id)
    with clock.frozen(past.cutoff_at + DAY / 2):
        for point in points:
            try:
                delivery.mark_delivered(session, actor=admin, wave_id=past.id, leader_id=point.id)
            except Conflict:  # a point without orders in this wave
                continue
    with clock.frozen(past.cutoff_at + DAY):
        for order_id, point in placed:
            if rng.random() < 0.85:
                wave_order = sync.lock_wave_order(session, merchant_id=merchant_id, order_id=order_id)
                if wave_order is not None and wave_order.status == "delivered":
                    delivery.verify_pickup(session, actor=_customer(point.customer_id, merchant_id),
                                           code=wave_order.pickup_code)

    # The open wave: started yesterday, cut off tomorrow evening.
    with clock.frozen(now - DAY):
        current = waves.create_wave(session, actor=admin, data=WaveIn(
            title="本周社区团购", description="今晚 20:00 前下单，后天到自提点。", starts_at=now - DAY,
            cutoff_at=now + dt.timedelta(hours=44), delivery_date=clock.local(now + 3 * DAY).date(),  # type: ignore[union-attr]
            items=items, commission_bps=1200))
        waves.open_wave(session, current.id, actor=admin)
    _buy(session, ctx, wave_items=items, buyers=buyers[: len(buyers) // 2], points=points, at=now - DAY / 2)
    ctx.data["groupbuy_wave_ids"] = [past.id, current.id]
    ctx.data["groupbuy_leader_ids"] = [p.id for p in points]


def _buy(session: Session, ctx: DemoContext, *, wave_items: list[WaveItemIn], buyers: list[int], points: list,
         at: dt.datetime) -> list[tuple[int, object]]:
    """Each buyer orders one to three items at a point and pays (through the orders services)."""
    rng, merchant_id = ctx.rng, ctx.merchant_id
    placed = []
    with clock.frozen(at):
        for n, customer_id in enumerate(buyers):
            point = points[n % len(points)]
            picks = rng.sample(wave_items, rng.randint(1, 3))
            request = CheckoutRequest.model_validate({
                "items": [{"sku_id": i.sku_id, "quantity": rng.randint(1, 2)} for i in picks],
                "fulfilment": {"type": "leader", "leader_id": point.id}})
            try:
                with session.begin_nested():
                    order, _ = orders.place_order(session, actor=_customer(customer_id, merchant_id), request=request)
                    locked = orders.get_order(session, order.id, actor=system_principal(merchant_id), lock=True)
                    if locked.status == "pending_payment":
                        orders.apply_payment(session, locked, payment_id=None, amount_cents=locked.payable_cents,
                                             paid_at=clock.now(), actor=None, note="Demo payment.")
                    sync.mark_paid(session, merchant_id=merchant_id, order_id=order.id, paid_at=clock.now())
            except AppError:  # e.g. a SKU sold out in the demo catalogue: that buyer skips
                continue
            placed.append((order.id, point))
    return placed
