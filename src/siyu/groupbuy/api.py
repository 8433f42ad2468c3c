"""REST routes of group buying: /api/v1/admin/groupbuy/… for staff, /api/v1/shop/{m}/groupbuy/… for
customers and leaders. Parse, call the service, serialise."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import NotFound
from siyu.core.privacy import mask_name, mask_phone
from siyu.core.web import DbSession
from siyu.customers.deps import ShopCustomer
from siyu.groupbuy import service
from siyu.groupbuy.models import CommunityGroup, Compound, Leader, Wave, WaveItem, WaveOrder
from siyu.groupbuy.schemas import (
    CompoundBody,
    DeliverBody,
    GroupBody,
    GroupMembers,
    Id,
    LeaderApply,
    LeaderApprove,
    LeaderClose,
    LeaderUpdate,
    Reason,
    RememberPoint,
    SettingsBody,
    VerifyCode,
    WaveBody,
)
from siyu.groupbuy.service.community import CompoundIn
from siyu.groupbuy.service.leaders import LeaderApplication
from siyu.groupbuy.service.waves import WaveIn, WaveItemIn
from siyu.groupbuy.states import LeaderStatus, WaveOrderStatus, WaveStatus
from siyu.merchants.deps import ShopMerchant, Staff

router = APIRouter(tags=["groupbuy"])

ADMIN = "/api/v1/admin/groupbuy"
SHOP = "/api/v1/shop/{m}/groupbuy"
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
LeaderStatusName = Literal[tuple(s.value for s in LeaderStatus)]  # type: ignore[valid-type]
WaveStatusName = Literal[tuple(s.value for s in WaveStatus)]  # type: ignore[valid-type]
ExportKind = Literal["purchase", "sorting", "manifest"]


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


# ---------------------------------------------------------------- serialisers


def leader_read(leader: Leader, *, full: bool, distance_m: int | None = None) -> dict[str, Any]:
    """A point as staff (full) or customers see it (leader's name and phone masked)."""
    data: dict[str, Any] = {
        "id": leader.id, "status": leader.status, "point_name": leader.point_name, "address": leader.address,
        "compound_id": leader.compound_id, "compound_name": leader.compound_name, "region": leader.region,
        "latitude": leader.latitude, "longitude": leader.longitude, "opening_hours": leader.opening_hours,
        "photo_url": leader.photo_url,
        "name": leader.name if full else mask_name(leader.name),
        "phone": leader.phone if full else mask_phone(leader.phone),
    }
    if distance_m is not None:
        data["distance_m"] = distance_m
    if full:
        data.update({"customer_id": leader.customer_id, "route": leader.route, "commission_bps": leader.commission_bps,
                     "applied_at": _iso(leader.applied_at), "approved_at": _iso(leader.approved_at),
                     "frozen_at": _iso(leader.frozen_at), "closed_at": _iso(leader.closed_at),
                     "reject_reason": leader.reject_reason})
    return data


def item_read(item: WaveItem) -> dict[str, Any]:
    return {"id": item.id, "sku_id": item.sku_id, "product_id": item.product_id, "title": item.title,
            "spec": item.spec, "image_url": item.image_url, "list_price_cents": item.list_price_cents,
            "price_cents": item.price_cents, "allocation": item.allocation, "sold": item.sold,
            "left": max(0, item.allocation - item.sold), "per_customer_limit": item.per_customer_limit,
            "commission_bps": item.commission_bps}


def wave_read(wave: Wave, items: list[WaveItem] | None = None, *, staff: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": wave.id, "title": wave.title, "description": wave.description, "status": wave.status,
        "starts_at": _iso(wave.starts_at), "cutoff_at": _iso(wave.cutoff_at),
        "delivery_date": _iso(wave.delivery_date),
        "seconds_to_cutoff": max(0, int((wave.cutoff_at - clock.now()).total_seconds())),
        "leader_ids": list(wave.leader_ids or []), "regions": list(wave.regions or []),
    }
    if staff:
        data.update({"commission_bps": wave.commission_bps, "orders_count": wave.orders_count,
                     "opened_at": _iso(wave.opened_at), "closed_at": _iso(wave.closed_at)})
    if items is not None:
        data["items"] = [item_read(i) if staff else {k: v for k, v in item_read(i).items() if k != "commission_bps"}
                         for i in items]
    return data


def wave_order_read(order: WaveOrder, lines: list[Any] | None = None, *, with_code: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": order.id, "order_id": order.order_id, "order_no": order.order_no, "wave_id": order.wave_id,
        "leader_id": order.leader_id, "original_leader_id": order.original_leader_id,
        "customer_id": order.customer_id, "customer_name": order.customer_name, "status": order.status,
        "total_cents": order.total_cents, "created_at": _iso(order.created_at), "paid_at": _iso(order.paid_at),
        "delivered_at": _iso(order.delivered_at), "picked_up_at": _iso(order.picked_up_at),
        "overdue_at": _iso(order.overdue_at)}
    if with_code and order.status in (WaveOrderStatus.PAID, WaveOrderStatus.DELIVERED):
        data["pickup_code"] = order.pickup_code
    if lines is not None:
        data["lines"] = [{"order_line_id": ln.order_line_id, "sku_id": ln.sku_id, "title": ln.title,
                          "quantity": ln.quantity, "paid_cents": ln.paid_cents, "short_quantity": ln.short_quantity,
                          "refunded_quantity": ln.refunded_quantity} for ln in lines]
    return data


def compound_read(c: Compound) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "address": c.address, "region": c.region, "latitude": c.latitude,
            "longitude": c.longitude, "households": c.households, "delivery_date": _iso(c.delivery_date),
            "note": c.note}


def group_read(g: CommunityGroup) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "compound_id": g.compound_id, "leader_id": g.leader_id,
            "owner_name": g.owner_name, "member_count": g.member_count}


def _wave_in(body: WaveBody) -> WaveIn:
    return WaveIn(title=body.title, description=body.description, starts_at=body.starts_at, cutoff_at=body.cutoff_at,
                  delivery_date=body.delivery_date, leader_ids=list(body.leader_ids), regions=list(body.regions),
                  commission_bps=body.commission_bps,
                  items=[WaveItemIn(**i.model_dump()) for i in body.items])


def _page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


# ---------------------------------------------------------------- admin: leaders


@router.get(f"{ADMIN}/leaders")
def admin_leaders(session: DbSession, principal: Staff, status: LeaderStatusName | None = None,
                  q: Annotated[str, Query(max_length=40)] = "", cursor: Cursor = None, limit: Limit = None) -> dict:
    page = service.leaders.list_leaders(session, actor=principal, status=status, q=q, cursor=cursor, limit=limit)
    return _page([leader_read(x, full=True) for x in page.items], page.next_cursor)


@router.get(f"{ADMIN}/leaders/{{leader_id}}")
def admin_leader(leader_id: Id, session: DbSession, principal: Staff) -> dict:
    service.common.require_manager(principal)
    leader = service.leaders.get_leader(session, leader_id, merchant_id=principal.merchant_id)
    data = leader_read(leader, full=True)
    data["earnings"] = service.commissions.earnings(session, merchant_id=principal.merchant_id, leader_id=leader.id)
    data["open_orders"] = service.leaders.open_orders_count(session, merchant_id=principal.merchant_id,
                                                            leader_id=leader.id)
    return data


@router.post(f"{ADMIN}/leaders/{{leader_id}}/approve")
def admin_leader_approve(leader_id: Id, body: LeaderApprove, session: DbSession, principal: Staff) -> dict:
    return leader_read(service.leaders.approve(session, leader_id, actor=principal, route=body.route,
                                               commission_bps=body.commission_bps), full=True)


@router.post(f"{ADMIN}/leaders/{{leader_id}}/reject")
def admin_leader_reject(leader_id: Id, body: Reason, session: DbSession, principal: Staff) -> dict:
    return leader_read(service.leaders.reject(session, leader_id, actor=principal, reason=body.reason), full=True)


@router.patch(f"{ADMIN}/leaders/{{leader_id}}")
def admin_leader_update(leader_id: Id, body: LeaderUpdate, session: DbSession, principal: Staff) -> dict:
    return leader_read(service.leaders.update_leader(session, leader_id, actor=principal, route=body.route,
                                                     commission_bps=body.commission_bps,
                                                     clear_commission=body.clear_commission), full=True)


@router.post(f"{ADMIN}/leaders/{{leader_id}}/freeze")
def admin_leader_freeze(leader_id: Id, session: DbSession, principal: Staff) -> dict:
    return leader_read(service.leaders.freeze(session, leader_id, actor=principal), full=True)


@router.post(f"{ADMIN}/leaders/{{leader_id}}/unfreeze")
def admin_leader_unfreeze(leader_id: Id, session: DbSession, principal: Staff) -> dict:
    return leader_read(service.leaders.unfreeze(session, leader_id, actor=principal), full=True)


@router.post(f"{ADMIN}/leaders/{{leader_id}}/close")
def admin_leader_close(leader_id: Id, body: LeaderClose, session: DbSession, principal: Staff) -> dict:
    leader, moved = service.leaders.close(session, leader_id, actor=principal, move_to_leader_id=body.move_to_leader_id)
    return {**leader_read(leader, full=True), "moved_orders": moved}


@router.get(f"{ADMIN}/points/nearest")
def admin_nearest(session: DbSession, principal: Staff, lat: Annotated[float, Query(ge=-90, le=90)],
                  lng: Annotated[float, Query(ge=-180, le=180)],
                  radius_m: Annotated[int | None, Query(ge=1, le=50_000)] = None) -> dict:
    service.common.require_manager(principal)
    found = service.points.nearest_points(session, merchant_id=principal.merchant_id, lat=lat, lng=lng,
                                          radius_m=radius_m)
    return {"items": [leader_read(p.leader, full=True, distance_m=p.distance_m) for p in found]}


# ---------------------------------------------------------------- admin: waves


@router.get(f"{ADMIN}/waves")
def admin_waves(session: DbSession, principal: Staff, status: WaveStatusName | None = None, cursor: Cursor = None,
                limit: Limit = None) -> dict:
    page = service.waves.list_waves(session, actor=principal, status=status, cursor=cursor, limit=limit)
    return _page([wave_read(w, staff=True) for w in page.items], page.next_cursor)


@router.post(f"{ADMIN}/waves", status_code=201)
def admin_wave_create(body: WaveBody, session: DbSession, principal: Staff) -> dict:
    wave = service.waves.create_wave(session, actor=principal, data=_wave_in(body))
    return wave_read(wave, service.waves.items_of(session, wave.id), staff=True)


@router.get(f"{ADMIN}/waves/{{wave_id}}")
def admin_wave(wave_id: Id, session: DbSession, principal: Staff) -> dict:
    service.common.require_manager(principal)
    wave = service.waves.get_wave(session, wave_id, merchant_id=principal.merchant_id)
    return {**wave_read(wave, service.waves.items_of(session, wave.id), staff=True),
            "totals": service.waves.live_totals(session, wave)}


@router.put(f"{ADMIN}/waves/{{wave_id}}")
def admin_wave_update(wave_id: Id, body: WaveBody, session: DbSession, principal: Staff) -> dict:
    wave = service.waves.update_wave(session, wave_id, actor=principal, data=_wave_in(body))
    return wave_read(wave, service.waves.items_of(session, wave.id), staff=True)


@router.post(f"{ADMIN}/waves/{{wave_id}}/open")
def admin_wave_open(wave_id: Id, session: DbSession, principal: Staff) -> dict:
    return wave_read(service.waves.open_wave(session, wave_id, actor=principal), staff=True)


@router.post(f"{ADMIN}/waves/{{wave_id}}/cancel")
def admin_wave_cancel(wave_id: Id, session: DbSession, principal: Staff) -> dict:
    return wave_read(service.waves.cancel_wave(session, wave_id, actor=principal), staff=True)


@router.post(f"{ADMIN}/waves/{{wave_id}}/cut-off")
def admin_wave_cutoff(wave_id: Id, session: DbSession, principal: Staff) -> dict:
    return wave_read(service.cutoff.close_now(session, wave_id, actor=principal), staff=True)


def _closed_wave(session: Any, wave_id: int, principal: Principal) -> Wave:
    service.common.require_manager(principal)
    return service.waves.get_wave(session, wave_id, merchant_id=principal.merchant_id)


@router.get(f"{ADMIN}/waves/{{wave_id}}/purchase-list")
def admin_purchase_list(wave_id: Id, session: DbSession, principal: Staff) -> dict:
    wave = _closed_wave(session, wave_id, principal)
    return {"wave_id": wave.id, "items": service.cutoff.purchase_list(session, wave.id)}


@router.get(f"{ADMIN}/waves/{{wave_id}}/sorting-list")
def admin_sorting_list(wave_id: Id, session: DbSession, principal: Staff, leader_id: Id | None = None) -> dict:
    wave = _closed_wave(session, wave_id, principal)
    return {"wave_id": wave.id, "items": service.cutoff.sorting_list(session, wave.id, leader_id=leader_id)}


@router.get(f"{ADMIN}/waves/{{wave_id}}/manifest")
def admin_manifest(wave_id: Id, session: DbSession, principal: Staff) -> dict:
    wave = _closed_wave(session, wave_id, principal)
    return {"wave_id": wave.id, "points": service.cutoff.delivery_manifest(session, wave.id)}


@router.get(f"{ADMIN}/waves/{{wave_id}}/exports/{{kind}}.csv")
def admin_export(wave_id: Id, kind: ExportKind, session: DbSession, principal: Staff) -> StreamingResponse:
    wave = _closed_wave(session, wave_id, principal)
    chunks = list(service.cutoff.csv_export(session, wave.id, kind))
    return StreamingResponse(iter(chunks), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="wave-{wave.id}-{kind}.csv"'})


@router.post(f"{ADMIN}/waves/{{wave_id}}/leaders/{{leader_id}}/deliver")
def admin_deliver(wave_id: Id, leader_id: Id, body: DeliverBody, session: DbSession, principal: Staff) -> dict:
    result = service.delivery.mark_delivered(session, actor=principal, wave_id=wave_id, leader_id=leader_id,
                                             shortages=[(s.order_line_id, s.quantity) for s in body.shortages])
    return dataclasses.asdict(result)


@router.get(f"{ADMIN}/overdue-pickups")
def admin_overdue(session: DbSession, principal: Staff) -> dict:
    service.common.require_manager(principal)
    return {"items": [wave_order_read(o, with_code=False)
                      for o in service.delivery.overdue_orders(session, merchant_id=principal.merchant_id)]}


@router.get(f"{ADMIN}/settings")
def admin_settings(session: DbSession, principal: Staff) -> dict:
    service.common.require_manager(principal)
    return dataclasses.asdict(service.common.groupbuy_settings(session, principal.merchant_id))


@router.patch(f"{ADMIN}/settings")
def admin_settings_update(body: SettingsBody, session: DbSession, principal: Staff) -> dict:
    return dataclasses.asdict(service.common.update_settings(session, actor=principal, **body.model_dump()))


# ---------------------------------------------------------------- admin: community map


@router.get(f"{ADMIN}/compounds")
def admin_compounds(session: DbSession, principal: Staff) -> dict:
    service.common.require_manager(principal)
    return {"items": [compound_read(c) for c in service.community.list_compounds(session,
                                                                                 merchant_id=principal.merchant_id)]}


@router.post(f"{ADMIN}/compounds", status_code=201)
def admin_compound_create(body: CompoundBody, session: DbSession, principal: Staff) -> dict:
    return compound_read(service.community.create_compound(session, actor=principal,
                                                           data=CompoundIn(**body.model_dump())))


@router.put(f"{ADMIN}/compounds/{{compound_id}}")
def admin_compound_update(compound_id: Id, body: CompoundBody, session: DbSession, principal: Staff) -> dict:
    return compound_read(service.community.update_compound(session, compound_id, actor=principal,
                                                           data=CompoundIn(**body.model_dump())))


@router.get(f"{ADMIN}/groups")
def admin_groups(session: DbSession, principal: Staff) -> dict:
    service.common.require_manager(principal)
    return {"items": [group_read(g) for g in service.community.list_groups(session, merchant_id=principal.merchant_id)]}


@router.post(f"{ADMIN}/groups", status_code=201)
def admin_group_create(body: GroupBody, session: DbSession, principal: Staff) -> dict:
    return group_read(service.community.create_group(session, actor=principal, **body.model_dump()))


@router.patch(f"{ADMIN}/groups/{{group_id}}")
def admin_group_members(group_id: Id, body: GroupMembers, session: DbSession, principal: Staff) -> dict:
    return group_read(service.community.update_group_members(session, group_id, actor=principal,
                                                             member_count=body.member_count))


@router.get(f"{ADMIN}/coverage")
def admin_coverage(session: DbSession, principal: Staff) -> dict:
    service.common.require_manager(principal)
    cov = service.community.coverage(session, merchant_id=principal.merchant_id)
    return {
        "total_households": cov["total_households"], "households_reached": cov["households_reached"],
        "without_leader": [c.id for c in cov["without_leader"]], "without_group": [c.id for c in cov["without_group"]],
        "compounds": [{**compound_read(r["compound"]), "leader_ids": [x.id for x in r["leaders"]],
                       "groups": r["groups"], "members": r["members"], "households_reached": r["households_reached"],
                       "orders": r["orders"], "orders_per_100_households": r["orders_per_100_households"],
                       "no_leader": r["no_leader"], "no_group": r["no_group"]} for r in cov["compounds"]],
    }


# ---------------------------------------------------------------- shop: waves and points


@router.get(f"{SHOP}/waves")
def shop_waves(session: DbSession, merchant: ShopMerchant) -> dict:
    return {"items": [wave_read(w, service.waves.items_of(session, w.id), staff=False)
                      for w in service.waves.shop_waves(session, merchant_id=merchant.id)]}


@router.get(f"{SHOP}/waves/{{wave_id}}")
def shop_wave(wave_id: Id, session: DbSession, merchant: ShopMerchant) -> dict:
    wave = service.waves.get_wave(session, wave_id, merchant_id=merchant.id)
    if wave.status in (WaveStatus.DRAFT, WaveStatus.CANCELLED):
        raise NotFound()
    return {**wave_read(wave, service.waves.items_of(session, wave.id), staff=False),
            "buyable": service.waves.is_buyable(wave)}


@router.get(f"{SHOP}/points")
def shop_points(session: DbSession, merchant: ShopMerchant, customer: ShopCustomer,
                lat: Annotated[float, Query(ge=-90, le=90)], lng: Annotated[float, Query(ge=-180, le=180)],
                radius_m: Annotated[int | None, Query(ge=1, le=50_000)] = None,
                wave_id: Id | None = None) -> dict:
    """Active pickup points near (lat, lng), nearest first; with `wave_id`, those the wave serves.
    `remembered` is the point the customer chose last."""
    leader_ids = regions = None
    if wave_id is not None:
        wave = service.waves.get_wave(session, wave_id, merchant_id=merchant.id)
        leader_ids, regions = list(wave.leader_ids or []) or None, list(wave.regions or []) or None
    found = service.points.nearest_points(session, merchant_id=merchant.id, lat=lat, lng=lng, radius_m=radius_m,
                                          leader_ids=leader_ids, regions=regions)
    remembered = service.points.remembered_point(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    return {"items": [leader_read(p.leader, full=False, distance_m=p.distance_m) for p in found],
            "remembered": leader_read(remembered, full=False) if remembered else None}


@router.post(f"{SHOP}/points/remember")
def shop_remember(body: RememberPoint, session: DbSession, merchant: ShopMerchant, customer: ShopCustomer) -> dict:
    return leader_read(service.points.remember_point(session, actor=customer, leader_id=body.leader_id), full=False)


@router.get(f"{SHOP}/my-orders")
def shop_my_orders(session: DbSession, merchant: ShopMerchant, customer: ShopCustomer) -> dict:
    rows = service.delivery.customer_orders(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    lines = service.delivery.order_lines(session, [o.id for o in rows])
    return {"items": [wave_order_read(o, lines[o.id], with_code=True) for o in rows]}


@router.get(f"{SHOP}/notifications")
def shop_notifications(session: DbSession, merchant: ShopMerchant, customer: ShopCustomer) -> dict:
    rows = service.notifications.notifications_of(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    return {"items": [{"id": n.id, "kind": n.kind, "order_id": n.order_id, "text": n.text,
                       "created_at": _iso(n.created_at), "read": n.read_at is not None} for n in rows]}


# ---------------------------------------------------------------- shop: the leader


@router.post(f"{SHOP}/leader-applications", status_code=201)
def shop_apply(body: LeaderApply, session: DbSession, merchant: ShopMerchant, customer: ShopCustomer) -> dict:
    leader = service.leaders.apply(session, actor=customer, application=LeaderApplication(**body.model_dump()))
    return leader_read(leader, full=True)


@router.get(f"{SHOP}/leader")
def shop_leader(session: DbSession, merchant: ShopMerchant, customer: ShopCustomer) -> dict:
    """The signed-in customer's leader record (any status) with their earnings."""
    leader = service.leaders.my_leader(session, actor=customer, statuses=tuple(s.value for s in LeaderStatus))
    return {**leader_read(leader, full=True),
            "earnings": service.commissions.earnings(session, merchant_id=merchant.id, leader_id=leader.id)}


@router.get(f"{SHOP}/leader/orders")
def shop_leader_orders(session: DbSession, merchant: ShopMerchant, customer: ShopCustomer,
                       status: Literal["paid", "delivered", "picked_up"] = "delivered") -> dict:
    leader = service.leaders.my_leader(session, actor=customer)
    rows = service.delivery.point_orders(session, merchant_id=merchant.id, leader_id=leader.id, statuses=(status,))
    lines = service.delivery.order_lines(session, [o.id for o in rows])
    return {"items": [wave_order_read(o, lines[o.id], with_code=False) for o in rows]}


@router.get(f"{SHOP}/leader/lookup")
def shop_leader_lookup(session: DbSession, merchant: ShopMerchant, customer: ShopCustomer,
                       code: Annotated[str, Query(max_length=8)]) -> dict:
    order = service.delivery.find_for_pickup(session, actor=customer, code=code)
    return wave_order_read(order, service.delivery.order_lines(session, [order.id])[order.id], with_code=False)


@router.post(f"{SHOP}/leader/verify")
def shop_leader_verify(body: VerifyCode, session: DbSession, merchant: ShopMerchant, customer: ShopCustomer) -> dict:
    order = service.delivery.verify_pickup(session, actor=customer, code=body.code)
    return wave_order_read(order, service.delivery.order_lines(session, [order.id])[order.id], with_code=False)


@router.get(f"{SHOP}/leader/customers")
def shop_leader_customers(session: DbSession, merchant: ShopMerchant, customer: ShopCustomer) -> dict:
    leader = service.leaders.my_leader(session, actor=customer)
    rows = service.delivery.point_customers(session, merchant_id=merchant.id, leader_id=leader.id)
    return {"items": [{**r, "name": mask_name(r["name"]), "last_order_at": _iso(r["last_order_at"])} for r in rows]}


@router.get(f"{SHOP}/leader/earnings")
def shop_leader_earnings(session: DbSession, merchant: ShopMerchant, customer: ShopCustomer) -> dict:
    leader = service.leaders.my_leader(session, actor=customer)
    rows = service.commissions.commissions_of(session, merchant_id=merchant.id, leader_id=leader.id, limit=100)
    return {**service.commissions.earnings(session, merchant_id=merchant.id, leader_id=leader.id),
            "items": [{"id": c.id, "order_id": c.order_id, "wave_id": c.wave_id, "base_cents": c.base_cents,
                       "bps": c.bps, "amount_cents": c.amount_cents, "reversed_cents": c.reversed_cents,
                       "status": c.status, "settle_after": _iso(c.settle_after), "settled_at": _iso(c.settled_at)}
                      for c in rows]}
