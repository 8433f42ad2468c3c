"""Pages of group buying.

Console (/console/groupbuy…): leaders (applications, review, freeze, close and move), a map of the
points, waves (builder, live totals, cut-off outputs as printable pages and CSV, delivery marking
with shortages), the community map with its coverage, and the settings.
H5 (/shop/{m}/…): the wave page (countdown, choose a point, buy), the leader centre (apply; orders
to hand out, verify a code, my customers, earnings, share the wave) and the customer's group orders.

Every page calls services; none queries tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from siyu.catalog import service as catalog
from siyu.config import get_settings
from siyu.core import clock
from siyu.core.auth import Principal
from siyu.core.errors import AppError, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.money import cents_to_yuan_str, yuan_to_cents
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers.deps import ShopForm, ShopPageCustomer
from siyu.groupbuy import service
from siyu.groupbuy.models import Wave
from siyu.groupbuy.service.community import CompoundIn
from siyu.groupbuy.service.leaders import LeaderApplication
from siyu.groupbuy.service.waves import WaveIn, WaveItemIn
from siyu.groupbuy.states import LEADER_LABELS, WAVE_LABELS, WAVE_ORDER_LABELS, LeaderStatus, WaveStatus
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff, ShopMerchant
from siyu.orders import service as orders
from siyu.orders.schemas import CheckoutRequest

router = APIRouter(include_in_schema=False)
PathId = Annotated[int, Path(gt=0, le=2**53)]
BASE = "/console/groupbuy"
LABELS = {"leader": {k.value: v for k, v in LEADER_LABELS.items()},
          "wave": {k.value: v for k, v in WAVE_LABELS.items()},
          "order": {k.value: v for k, v in WAVE_ORDER_LABELS.items()}}
ITEM_ROWS = 8
CONSOLE_FLASH = {
    "approved": "The leader was approved: the point takes orders.", "rejected": "The application was rejected.",
    "frozen": "The point is frozen.", "unfrozen": "The point takes orders again.",
    "closed": "The point was closed.", "saved": "Saved.", "opened": "The wave is open for orders.",
    "cut_off": "The wave was cut off: its lists are ready.", "cancelled": "The wave was cancelled.",
    "delivered": "Delivery recorded; the customers were notified.", "compound": "Compound saved.",
    "group": "Group saved.",
}


def _flash(request: Request, messages: dict[str, str]) -> str | None:
    key = request.query_params.get("ok", "")
    return _(messages[key]) if key in messages else None


def _console(request: Request, session: Any, principal: Principal, name: str, ctx: dict[str, Any],
             status: int = 200) -> Response:
    service.common.require_manager(principal)
    base = {"active_menu": "groupbuy", "labels": LABELS, "flash": _flash(request, CONSOLE_FLASH),
            "merchant_name": merchants.get_merchant(session, principal.merchant_id).name}
    return render(request, f"groupbuy/{name}", {**base, **ctx}, status_code=status)


def _fields(exc: AppError) -> dict[str, str]:
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    return dict(fields) if isinstance(fields, dict) else {}


def _opt_int(raw: str, *, low: int = 0, high: int = 2**53) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 16 or not low <= int(raw) <= high:
        raise ValueError(raw)
    return int(raw)


def _opt_float(raw: str) -> float | None:
    raw = (raw or "").strip()[:30]
    if not raw:
        return None
    value = float(raw)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(raw)
    return value


def _local_dt(raw: str) -> dt.datetime:
    """A datetime-local field (Asia/Shanghai) as UTC."""
    return dt.datetime.fromisoformat(raw.strip()[:19]).replace(tzinfo=clock.SHANGHAI).astimezone(dt.UTC)


def _local_input(value: dt.datetime | None) -> str:
    return clock.format_local(value, "%Y-%m-%dT%H:%M") if value else ""


# ================================================================= console: leaders


@router.get(BASE)
def console_index() -> Response:
    return RedirectResponse(f"{BASE}/leaders", status_code=303)


@router.get(f"{BASE}/leaders")
def console_leaders(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    status = request.query_params.get("status", "applied")
    status = status if status in LABELS["leader"] or status == "all" else "applied"
    q = request.query_params.get("q", "")[:40]
    page = service.leaders.list_leaders(session, actor=principal, status=None if status == "all" else status, q=q,
                                        cursor=request.query_params.get("cursor") or None, limit=50)
    return _console(request, session, principal, "console_leaders.html", {
        "sub": "leaders", "status": status, "q": q, "page": page,
        "counts": service.leaders.counts_by_status(session, merchant_id=principal.merchant_id),
        "earnings": service.commissions.totals_by_leader(session, merchant_id=principal.merchant_id)})


def _leader_page(request: Request, session: Any, principal: Principal, leader_id: int, *,
                 errors: dict[str, str] | None = None, status: int = 200) -> Response:
    service.common.require_manager(principal)
    leader = service.leaders.get_leader(session, leader_id, merchant_id=principal.merchant_id)
    nearby = [p for p in service.points.nearest_points(session, merchant_id=principal.merchant_id, lat=leader.latitude,
                                                       lng=leader.longitude, radius_m=50_000, limit=11)
              if p.leader.id != leader.id][:10]
    return _console(request, session, principal, "console_leader.html", {
        "sub": "leaders", "leader": leader, "nearby": nearby, "errors": errors or {},
        "earnings": service.commissions.earnings(session, merchant_id=principal.merchant_id, leader_id=leader.id),
        "open_orders": service.leaders.open_orders_count(session, merchant_id=principal.merchant_id,
                                                         leader_id=leader.id),
        "commissions": service.commissions.commissions_of(session, merchant_id=principal.merchant_id,
                                                          leader_id=leader.id, limit=30)}, status=status)


@router.get(f"{BASE}/leaders/{{leader_id}}")
def console_leader(leader_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _leader_page(request, session, principal, leader_id)


@router.post(f"{BASE}/leaders/{{leader_id}}/{{action}}")
def console_leader_action(leader_id: PathId, action: str, request: Request, session: DbSession,
                          principal: ConsoleStaff, form: ConsoleForm) -> Response:
    try:
        if action == "approve":
            bps = _opt_int(form_str(form, "commission_bps"), high=5000)
            service.leaders.approve(session, leader_id, actor=principal, route=form_str(form, "route", max_length=40),
                                    commission_bps=bps)
            ok = "approved"
        elif action == "reject":
            service.leaders.reject(session, leader_id, actor=principal,
                                   reason=form_str(form, "reason", max_length=200) or _("Not accepted"))
            ok = "rejected"
        elif action == "freeze":
            service.leaders.freeze(session, leader_id, actor=principal)
            ok = "frozen"
        elif action == "unfreeze":
            service.leaders.unfreeze(session, leader_id, actor=principal)
            ok = "unfrozen"
        elif action == "update":
            raw = form_str(form, "commission_bps")
            service.leaders.update_leader(session, leader_id, actor=principal,
                                          route=form_str(form, "route", max_length=40),
                                          commission_bps=_opt_int(raw, high=5000), clear_commission=not raw)
            ok = "saved"
        elif action == "close":
            service.leaders.close(session, leader_id, actor=principal,
                                  move_to_leader_id=_opt_int(form_str(form, "move_to_leader_id"), low=1))
            ok = "closed"
        else:
            raise NotFound()
    except ValueError:
        return _leader_page(request, session, principal, leader_id, status=422,
                            errors={"form": _("Some fields are not valid.")})
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        return _leader_page(request, session, principal, leader_id, status=exc.status_code,
                            errors=_fields(exc) or {"form": exc.translated()})
    back = form_str(form, "back", max_length=200)
    target = back if back.startswith(f"{BASE}/") else f"{BASE}/leaders/{leader_id}"
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}ok={ok}", status_code=303)


@router.get(f"{BASE}/map")
def console_map(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    """The points (and compounds) as a scatter on an equirectangular projection of their bounding box."""
    service.common.require_manager(principal)
    points = service.leaders.all_points(session, merchant_id=principal.merchant_id)
    compounds = [c for c in service.community.list_compounds(session, merchant_id=principal.merchant_id)
                 if c.latitude is not None and c.longitude is not None]
    coords = [(p.latitude, p.longitude) for p in points] + [(c.latitude, c.longitude) for c in compounds]
    plot: dict[str, Any] = {"points": [], "compounds": []}
    if coords:
        lats, lngs = [c[0] for c in coords], [c[1] for c in coords]
        lat0, lat1 = min(lats), max(lats)
        lng0, lng1 = min(lngs), max(lngs)
        span_lat, span_lng = max(lat1 - lat0, 1e-4), max(lng1 - lng0, 1e-4)

        def xy(lat: float, lng: float) -> tuple[float, float]:
            return 20 + 760 * (lng - lng0) / span_lng, 20 + 460 * (lat1 - lat) / span_lat

        plot["points"] = [{"leader": p, "xy": xy(p.latitude, p.longitude)} for p in points]
        plot["compounds"] = [{"compound": c, "xy": xy(c.latitude, c.longitude)} for c in compounds]  # type: ignore[arg-type]
    return _console(request, session, principal, "console_map.html", {"sub": "map", "plot": plot, "points": points})


# ================================================================= console: waves


@router.get(f"{BASE}/waves")
def console_waves(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    status = request.query_params.get("status", "")
    page = service.waves.list_waves(session, actor=principal, status=status if status in LABELS["wave"] else None,
                                    cursor=request.query_params.get("cursor") or None, limit=50)
    return _console(request, session, principal, "console_waves.html", {"sub": "waves", "page": page,
                                                                        "status": status})


def _sku_choices(session: Any, principal: Principal) -> list[dict[str, Any]]:
    products = catalog.list_products(session, actor=principal, status="on_sale", limit=100).items
    return [{"sku_id": s.id, "title": f"{v.title} {s.spec_text}".strip(), "price_cents": s.price_cents,
             "stock": s.stock}
            for v in catalog.product_views(session, merchant_id=principal.merchant_id, products=products,
                                           active_skus_only=True) for s in v.skus]


def _builder(request: Request, session: Any, principal: Principal, *, wave: Wave | None, typed: dict[str, Any],
             errors: dict[str, str] | None = None, status: int = 200) -> Response:
    return _console(request, session, principal, "console_wave_form.html", {
        "sub": "waves", "wave": wave, "typed": typed, "errors": errors or {},
        "skus": _sku_choices(session, principal),
        "points": service.leaders.all_points(session, merchant_id=principal.merchant_id,
                                             statuses=(LeaderStatus.ACTIVE.value,))}, status=status)


def _typed_from_wave(session: Any, wave: Wave | None) -> dict[str, Any]:
    if wave is None:
        start = clock.now().replace(second=0, microsecond=0)
        return {"title": "", "description": "", "starts_at": _local_input(start),
                "cutoff_at": _local_input(start + dt.timedelta(days=1)),
                "delivery_date": (clock.today_local() + dt.timedelta(days=2)).isoformat(), "commission_bps": "",
                "regions": "", "leader_ids": [], "items": [{} for _ in range(ITEM_ROWS)]}
    items = [{"sku_id": str(i.sku_id), "price": cents_to_yuan_str(i.price_cents), "allocation": str(i.allocation),
              "limit": str(i.per_customer_limit or ""), "bps": str(i.commission_bps if i.commission_bps is not None else "")}
             for i in service.waves.items_of(session, wave.id)]
    return {"title": wave.title, "description": wave.description, "starts_at": _local_input(wave.starts_at),
            "cutoff_at": _local_input(wave.cutoff_at), "delivery_date": wave.delivery_date.isoformat(),
            "commission_bps": "" if wave.commission_bps is None else str(wave.commission_bps),
            "regions": ", ".join(wave.regions or []), "leader_ids": [str(i) for i in wave.leader_ids or []],
            "items": items + [{} for _ in range(max(0, ITEM_ROWS - len(items)))]}


def _parse_wave(form: Any) -> tuple[dict[str, Any], WaveIn | None, dict[str, str]]:
    typed: dict[str, Any] = {k: form_str(form, k, max_length=500) for k in
                             ("title", "description", "starts_at", "cutoff_at", "delivery_date", "commission_bps",
                              "regions")}
    typed["leader_ids"] = [v for v in form.getlist("leader_ids") if isinstance(v, str)][:1000]
    errors: dict[str, str] = {}
    items_typed, items = [], []
    for n in range(ITEM_ROWS * 3):
        row = {k: form_str(form, f"items-{n}-{k}", max_length=20) for k in ("sku_id", "price", "allocation", "limit",
                                                                             "bps")}
        if n >= ITEM_ROWS and not any(row.values()):
            continue
        items_typed.append(row)
        if not row["sku_id"]:
            continue
        try:
            items.append(WaveItemIn(sku_id=_opt_int(row["sku_id"], low=1) or 0, price_cents=yuan_to_cents(row["price"]),
                                    allocation=_opt_int(row["allocation"], low=1, high=10**6) or 0,
                                    per_customer_limit=_opt_int(row["limit"], low=1, high=999),
                                    commission_bps=_opt_int(row["bps"], high=5000)))
        except ValueError:
            errors[f"items.{len(items_typed) - 1}"] = _("Check this row: SKU id, price in yuan, units, limit, bps.")
    typed["items"] = items_typed
    try:
        starts, cutoff = _local_dt(typed["starts_at"]), _local_dt(typed["cutoff_at"])
    except ValueError:
        errors["cutoff_at"] = _("Enter the start and the cut-off.")
        starts = cutoff = clock.now()
    try:
        delivery = dt.date.fromisoformat(typed["delivery_date"])
    except ValueError:
        errors["delivery_date"] = _("Enter the delivery date.")
        delivery = clock.today_local()
    try:
        bps = _opt_int(typed["commission_bps"], high=5000)
        leader_ids = [int(v) for v in typed["leader_ids"] if v.isdigit() and len(v) < 16]
    except ValueError:
        errors["commission_bps"] = _("A commission rate is 0 to 5000 bps (50%).")
        bps, leader_ids = None, []
    if errors:
        return typed, None, errors
    regions = [r.strip() for r in typed["regions"].replace("，", ",").split(",") if r.strip()]
    return typed, WaveIn(title=typed["title"], description=typed["description"], starts_at=starts, cutoff_at=cutoff,
                         delivery_date=delivery, items=items, leader_ids=leader_ids, regions=regions,
                         commission_bps=bps), {}


@router.get(f"{BASE}/waves/new")
def console_wave_new(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.common.require_manager(principal)
    return _builder(request, session, principal, wave=None, typed=_typed_from_wave(session, None))


@router.post(f"{BASE}/waves/new")
def console_wave_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    return _save_wave(request, session, principal, form, wave=None)


@router.get(f"{BASE}/waves/{{wave_id}}/edit")
def console_wave_edit(wave_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.common.require_manager(principal)
    wave = service.waves.get_wave(session, wave_id, merchant_id=principal.merchant_id)
    return _builder(request, session, principal, wave=wave, typed=_typed_from_wave(session, wave))


@router.post(f"{BASE}/waves/{{wave_id}}/edit")
def console_wave_save(wave_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff,
                      form: ConsoleForm) -> Response:
    service.common.require_manager(principal)
    wave = service.waves.get_wave(session, wave_id, merchant_id=principal.merchant_id)
    return _save_wave(request, session, principal, form, wave=wave)


def _save_wave(request: Request, session: Any, principal: Principal, form: Any, *, wave: Wave | None) -> Response:
    typed, data, errors = _parse_wave(form)
    if data is not None:
        try:
            with session.begin_nested():
                if wave is None:
                    wave = service.waves.create_wave(session, actor=principal, data=data)
                else:
                    wave = service.waves.update_wave(session, wave.id, actor=principal, data=data)
            return RedirectResponse(f"{BASE}/waves/{wave.id}?ok=saved", status_code=303)
        except AppError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = _fields(exc) or {"form": exc.translated()}
    return _builder(request, session, principal, wave=wave, typed=typed, errors=errors, status=422)


@router.get(f"{BASE}/waves/{{wave_id}}")
def console_wave(wave_id: PathId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    service.common.require_manager(principal)
    wave = service.waves.get_wave(session, wave_id, merchant_id=principal.merchant_id)
    closed = wave.status == WaveStatus.CLOSED
    return _console(request, session, principal, "console_wave.html", {
        "sub": "waves", "wave": wave, "totals": service.waves.live_totals(session, wave),
        "manifest": service.cutoff.delivery_manifest(session, wave.id) if closed else [],
        "points": {p.id: p for p in service.leaders.all_points(
            session, merchant_id=principal.merchant_id, statuses=tuple(s.value for s in LeaderStatus))},
        "error": request.query_params.get("error", "")[:200]})


@router.post(f"{BASE}/waves/{{wave_id}}/{{action}}")
def console_wave_action(wave_id: PathId, action: str, request: Request, session: DbSession, principal: ConsoleStaff,
                        form: ConsoleForm) -> Response:
    try:
        if action == "open":
            service.waves.open_wave(session, wave_id, actor=principal)
            ok = "opened"
        elif action == "cut-off":
            service.cutoff.close_now(session, wave_id, actor=principal)
            ok = "cut_off"
        elif action == "cancel":
            service.waves.cancel_wave(session, wave_id, actor=principal)
            ok = "cancelled"
        else:
            raise NotFound()
    except AppError as exc:
        if exc.status_code != 409:
            raise
        return RedirectResponse(f"{BASE}/waves/{wave_id}?error={quote(exc.translated())}", status_code=303)
    return RedirectResponse(f"{BASE}/waves/{wave_id}?ok={ok}", status_code=303)


@router.get(f"{BASE}/waves/{{wave_id}}/lists/{{kind}}.csv")
def console_wave_csv(wave_id: PathId, kind: str, session: DbSession, principal: ConsoleStaff) -> Response:
    service.common.require_manager(principal)
    wave = service.waves.get_wave(session, wave_id, merchant_id=principal.merchant_id)
    if kind not in ("purchase", "sorting", "manifest"):
        raise NotFound()
    chunks = list(service.cutoff.csv_export(session, wave.id, kind))
    return StreamingResponse(iter(chunks), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="wave-{wave.id}-{kind}.csv"'})


@router.get(f"{BASE}/waves/{{wave_id}}/lists/{{kind}}")
def console_wave_list(wave_id: PathId, kind: str, request: Request, session: DbSession,
                      principal: ConsoleStaff) -> Response:
    """A printable cut-off output: purchase list, sorting list or delivery manifest."""
    service.common.require_manager(principal)
    wave = service.waves.get_wave(session, wave_id, merchant_id=principal.merchant_id)
    if kind not in ("purchase", "sorting", "manifest"):
        raise NotFound()
    rows: Any
    if kind == "purchase":
        rows = service.cutoff.purchase_list(session, wave.id)
    elif kind == "sorting":
        rows = service.cutoff.sorting_list(session, wave.id)
    else:
        rows = service.cutoff.delivery_manifest(session, wave.id)
    return _console(request, session, principal, "console_wave_list.html", {"sub": "waves", "wave": wave,
                                                                            "kind": kind, "rows": rows})


def _deliver_page(request: Request, session: Any, principal: Principal, wave_id: int, leader_id: int, *,
                  errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                  status: int = 200) -> Response:
    service.common.require_manager(principal)
    wave = service.waves.get_wave(session, wave_id, merchant_id=principal.merchant_id)
    leader = service.leaders.get_leader(session, leader_id, merchant_id=principal.merchant_id)
    waiting = service.delivery.point_orders(session, merchant_id=principal.merchant_id, leader_id=leader.id,
                                            statuses=("paid",), limit=2000)
    waiting = [o for o in waiting if o.wave_id == wave.id]
    return _console(request, session, principal, "console_deliver.html", {
        "sub": "waves", "wave": wave, "leader": leader, "waiting": waiting,
        "lines": service.delivery.order_lines(session, [o.id for o in waiting]), "errors": errors or {},
        "typed": typed or {}}, status=status)


@router.get(f"{BASE}/waves/{{wave_id}}/deliver/{{leader_id}}")
def console_deliver(wave_id: PathId, leader_id: PathId, request: Request, session: DbSession,
                    principal: ConsoleStaff) -> Response:
    return _deliver_page(request, session, principal, wave_id, leader_id)


@router.post(f"{BASE}/waves/{{wave_id}}/deliver/{{leader_id}}")
def console_deliver_post(wave_id: PathId, leader_id: PathId, request: Request, session: DbSession,
                         principal: ConsoleStaff, form: ConsoleForm) -> Response:
    typed: dict[str, str] = {}
    shortages: list[tuple[int, int]] = []
    try:
        for key in form:
            if isinstance(key, str) and key.startswith("short-"):
                raw = form_str(form, key, max_length=5)
                typed[key] = raw
                units = _opt_int(raw, high=999)
                if units:
                    shortages.append((int(key[6:]), units))
    except ValueError:
        return _deliver_page(request, session, principal, wave_id, leader_id, typed=typed, status=422,
                             errors={"form": _("Enter whole numbers of missing units.")})
    try:
        with session.begin_nested():
            service.delivery.mark_delivered(session, actor=principal, wave_id=wave_id, leader_id=leader_id,
                                            shortages=shortages)
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        return _deliver_page(request, session, principal, wave_id, leader_id, typed=typed, status=exc.status_code,
                             errors={"form": next(iter(_fields(exc).values()), None) or exc.translated()})
    return RedirectResponse(f"{BASE}/waves/{wave_id}?ok=delivered", status_code=303)


# ================================================================= console: community map


def _community_page(request: Request, session: Any, principal: Principal, *, errors: dict[str, str] | None = None,
                    typed: dict[str, str] | None = None, status: int = 200) -> Response:
    service.common.require_manager(principal)
    return _console(request, session, principal, "console_community.html", {
        "sub": "community", "coverage": service.community.coverage(session, merchant_id=principal.merchant_id),
        "groups": service.community.list_groups(session, merchant_id=principal.merchant_id),
        "compounds": service.community.list_compounds(session, merchant_id=principal.merchant_id),
        "points": service.leaders.all_points(session, merchant_id=principal.merchant_id),
        "overdue": service.delivery.overdue_orders(session, merchant_id=principal.merchant_id, limit=50),
        "errors": errors or {}, "typed": typed or {}}, status=status)


@router.get(f"{BASE}/community")
def console_community(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    return _community_page(request, session, principal)


@router.post(f"{BASE}/community/compounds")
def console_compound_create(request: Request, session: DbSession, principal: ConsoleStaff,
                            form: ConsoleForm) -> Response:
    typed = {k: form_str(form, k, max_length=200) for k in ("name", "address", "region", "latitude", "longitude",
                                                            "households", "delivery_date")}
    try:
        data = CompoundIn(name=typed["name"], address=typed["address"], region=typed["region"],
                          latitude=_opt_float(typed["latitude"]), longitude=_opt_float(typed["longitude"]),
                          households=_opt_int(typed["households"], high=1_000_000) or 0,
                          delivery_date=dt.date.fromisoformat(typed["delivery_date"]) if typed["delivery_date"] else None)
    except ValueError:
        return _community_page(request, session, principal, typed=typed, status=422,
                               errors={"compound": _("Check the numbers and the date.")})
    try:
        with session.begin_nested():
            service.community.create_compound(session, actor=principal, data=data)
    except ValidationFailed as exc:
        return _community_page(request, session, principal, typed=typed, status=422,
                               errors={"compound": "; ".join(_fields(exc).values())})
    return RedirectResponse(f"{BASE}/community?ok=compound", status_code=303)


@router.post(f"{BASE}/community/groups")
def console_group_create(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    typed = {k: form_str(form, k, max_length=80) for k in ("group_name", "compound_id", "leader_id", "owner_name",
                                                           "member_count")}
    try:
        compound_id = _opt_int(typed["compound_id"], low=1)
        leader_id = _opt_int(typed["leader_id"], low=1)
        members = _opt_int(typed["member_count"], high=100_000) or 0
    except ValueError:
        return _community_page(request, session, principal, typed=typed, status=422,
                               errors={"group": _("Check the numbers.")})
    try:
        with session.begin_nested():
            service.community.create_group(session, actor=principal, name=typed["group_name"], compound_id=compound_id,
                                           leader_id=leader_id, owner_name=typed["owner_name"], member_count=members)
    except ValidationFailed as exc:
        return _community_page(request, session, principal, typed=typed, status=422,
                               errors={"group": "; ".join(_fields(exc).values())})
    return RedirectResponse(f"{BASE}/community?ok=group", status_code=303)


# ================================================================= H5: the wave page


def _shop_wave_page(request: Request, session: Any, merchant: Any, customer: Principal, wave_id: int, *,
                    flash: str | None = None, status: int = 200, typed: dict[str, str] | None = None) -> Response:
    wave = service.waves.get_wave(session, wave_id, merchant_id=merchant.id)
    if wave.status in (WaveStatus.DRAFT, WaveStatus.CANCELLED):
        raise NotFound()
    lat = _safe_float(request.query_params.get("lat"), -90, 90)
    lng = _safe_float(request.query_params.get("lng"), -180, 180)
    nearby = []
    if lat is not None and lng is not None:
        nearby = [p for p in service.points.nearest_points(
            session, merchant_id=merchant.id, lat=lat, lng=lng, leader_ids=list(wave.leader_ids or []) or None,
            regions=list(wave.regions or []) or None) if service.waves.serves(wave, p.leader)]
    remembered = service.points.remembered_point(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    if remembered is not None and not service.waves.serves(wave, remembered):
        remembered = None
    chosen = request.query_params.get("leader_id", "")
    return render(request, "groupbuy/shop_wave.html", {
        "wave": wave, "items": service.waves.items_of(session, wave.id), "buyable": service.waves.is_buyable(wave),
        "seconds_left": max(0, int((wave.cutoff_at - clock.now()).total_seconds())), "nearby": nearby,
        "remembered": remembered, "lat": lat, "lng": lng, "chosen": chosen, "flash": flash,
        "flash_kind": "error" if flash else None, "typed": typed or {}, "tab": "home"}, status_code=status)


def _safe_float(raw: Any, low: float, high: float) -> float | None:
    try:
        value = float((raw or "").strip()[:20]) if isinstance(raw, str) else None
    except ValueError:
        return None
    return value if value is not None and low <= value <= high else None


@router.get("/shop/{m}/wave/{wave_id}")
def shop_wave(wave_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
              customer: ShopPageCustomer) -> Response:
    return _shop_wave_page(request, session, merchant, customer, wave_id)


@router.get("/shop/{m}/groupbuy")
def shop_groupbuy(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer) -> Response:
    """Open waves, the customer's group orders with their pickup codes, and their notices."""
    mine = service.delivery.customer_orders(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    notices = service.notifications.notifications_of(session, merchant_id=merchant.id,
                                                     customer_id=customer.customer_id)
    page = render(request, "groupbuy/shop_groupbuy.html", {
        "waves": service.waves.shop_waves(session, merchant_id=merchant.id), "mine": mine,
        "lines": service.delivery.order_lines(session, [o.id for o in mine]), "notices": notices,
        "labels": LABELS, "tab": "me"})
    service.notifications.mark_read(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    return page


@router.post("/shop/{m}/wave/{wave_id}/buy")
def shop_wave_buy(wave_id: PathId, request: Request, merchant: ShopMerchant, session: DbSession,
                  customer: ShopPageCustomer, form: ShopForm) -> Response:
    wave = service.waves.get_wave(session, wave_id, merchant_id=merchant.id)
    typed = {k: form_str(form, k, max_length=20) for k in form if isinstance(k, str) and k.startswith("qty-")}
    leader_raw = form_str(form, "leader_id", max_length=20)
    items = []
    for item in service.waves.items_of(session, wave.id):
        raw = typed.get(f"qty-{item.sku_id}", "")
        if raw.isdigit() and 0 < int(raw) <= 999:
            items.append({"sku_id": item.sku_id, "quantity": int(raw)})
    if not leader_raw.isdigit() or len(leader_raw) > 16:
        return _shop_wave_page(request, session, merchant, customer, wave.id, typed=typed, status=422,
                               flash=_("Choose a pickup point first."))
    if not items:
        return _shop_wave_page(request, session, merchant, customer, wave.id, typed=typed, status=422,
                               flash=_("Choose how many of each item you want."))
    try:
        with session.begin_nested():
            service.points.remember_point(session, actor=customer, leader_id=int(leader_raw))
            order = orders.place_order(session, actor=customer, request=CheckoutRequest.model_validate(
                {"items": items, "fulfilment": {"type": "leader", "leader_id": int(leader_raw)}}))[0]
    except AppError as exc:
        if exc.status_code not in (409, 422):
            raise
        return _shop_wave_page(request, session, merchant, customer, wave.id, typed=typed, status=exc.status_code,
                               flash=next(iter(_fields(exc).values()), None) or exc.translated())
    return RedirectResponse(f"/shop/{merchant.slug}/orders/{order.id}", status_code=303)


# ================================================================= H5: the leader centre


APPLY_FIELDS = ("name", "phone", "point_name", "address", "compound_id", "latitude", "longitude", "opening_hours")


def _leader_centre(request: Request, session: Any, merchant: Any, customer: Principal, *,
                   errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                   found: Any = None, flash: str | None = None, flash_kind: str | None = None,
                   status: int = 200) -> Response:
    leader = service.leaders.leader_of_customer(session, merchant_id=merchant.id, customer_id=customer.customer_id)
    ctx: dict[str, Any] = {"leader": leader, "errors": errors or {}, "typed": typed or {}, "found": found,
                           "labels": LABELS, "tab": "me", "flash": flash, "flash_kind": flash_kind}
    if leader is None or leader.status in (LeaderStatus.APPLIED, LeaderStatus.REJECTED, LeaderStatus.CLOSED):
        ctx["compounds"] = service.community.list_compounds(session, merchant_id=merchant.id)
        return render(request, "groupbuy/shop_leader_apply.html", ctx, status_code=status)
    view = request.query_params.get("view", "handout")
    ctx["view"] = view if view in ("handout", "waiting", "customers", "earnings", "share") else "handout"
    statuses = {"handout": ("delivered",), "waiting": ("paid",)}.get(ctx["view"], ("delivered",))
    rows = service.delivery.point_orders(session, merchant_id=merchant.id, leader_id=leader.id, statuses=statuses)
    ctx.update({
        "orders": rows, "lines": service.delivery.order_lines(session, [o.id for o in rows] + ([found.id] if found else [])),
        "customers": service.delivery.point_customers(session, merchant_id=merchant.id, leader_id=leader.id)
        if ctx["view"] == "customers" else [],
        "earnings": service.commissions.earnings(session, merchant_id=merchant.id, leader_id=leader.id),
        "commissions": service.commissions.commissions_of(session, merchant_id=merchant.id, leader_id=leader.id,
                                                          limit=50) if ctx["view"] == "earnings" else [],
        "waves": [(w, service.share_link(session, merchant_id=merchant.id, wave_id=w.id,
                                         leader_customer_id=leader.customer_id))
                  for w in service.waves.shop_waves(session, merchant_id=merchant.id)
                  if service.waves.serves(w, leader)] if ctx["view"] == "share" else [],
        "public_base": get_settings().public_base_url.rstrip("/"),
    })
    return render(request, "groupbuy/shop_leader.html", ctx, status_code=status)


@router.get("/shop/{m}/leader")
def shop_leader(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer) -> Response:
    flash = {"applied": _("Thanks! Your application was sent; we will review it soon."),
             "verified": _("Handed out: the order is completed.")}.get(request.query_params.get("ok", ""))
    return _leader_centre(request, session, merchant, customer, flash=flash)


@router.post("/shop/{m}/leader/apply")
def shop_leader_apply(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
                      form: ShopForm) -> Response:
    typed = {k: form_str(form, k, max_length=200) for k in APPLY_FIELDS + ("region",)}
    errors: dict[str, str] = {}
    photo = form.get("photo")
    data = b""
    if photo is not None and not isinstance(photo, str) and getattr(photo, "filename", ""):
        data = photo.file.read(get_settings().media_max_bytes + 1)
    try:
        lat, lng = _opt_float(typed["latitude"]), _opt_float(typed["longitude"])
    except ValueError:
        lat = lng = None
    try:
        compound_id = _opt_int(typed["compound_id"], low=1)
    except ValueError:
        compound_id = None
        errors["compound_id"] = _("Choose a compound from the list.")
    application = LeaderApplication(name=typed["name"], phone=typed["phone"], point_name=typed["point_name"],
                                    address=typed["address"], latitude=lat, longitude=lng,
                                    opening_hours=typed["opening_hours"], compound_id=compound_id,
                                    region=typed["region"], photo=data or None,
                                    photo_name=getattr(photo, "filename", "") or "")
    if not errors:
        try:
            with session.begin_nested():
                service.leaders.apply(session, actor=customer, application=application)
            return RedirectResponse(f"/shop/{merchant.slug}/leader?ok=applied", status_code=303)
        except AppError as exc:
            if exc.status_code not in (409, 413, 415, 422):
                raise
            errors = _fields(exc) or {"photo" if exc.status_code in (413, 415) else "form": exc.translated()}
    return _leader_centre(request, session, merchant, customer, errors=errors, typed=typed, status=422)


@router.post("/shop/{m}/leader/verify")
def shop_leader_verify(request: Request, merchant: ShopMerchant, session: DbSession, customer: ShopPageCustomer,
                       form: ShopForm) -> Response:
    """Two steps on one form: find the order by its code, then hand it over (核销)."""
    code = form_str(form, "code", max_length=8)
    try:
        if form_str(form, "action") == "confirm":
            with session.begin_nested():
                service.delivery.verify_pickup(session, actor=customer, code=code,
                                               wave_order_id=_opt_int(form_str(form, "wave_order_id"), low=1))
            return RedirectResponse(f"/shop/{merchant.slug}/leader?ok=verified", status_code=303)
        found = service.delivery.find_for_pickup(session, actor=customer, code=code)
    except ValueError:
        found = None
        return _leader_centre(request, session, merchant, customer, typed={"code": code}, status=422,
                              errors={"code": _("Enter the 6–8 digit pickup code.")})
    except AppError as exc:
        if exc.status_code not in (404, 409, 422):
            raise
        return _leader_centre(request, session, merchant, customer, typed={"code": code}, status=exc.status_code,
                              errors={"code": next(iter(_fields(exc).values()), None) or exc.translated()})
    return _leader_centre(request, session, merchant, customer, typed={"code": code}, found=found)
