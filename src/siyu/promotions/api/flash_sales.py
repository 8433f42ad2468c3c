"""promotions: flash sales (秒杀): time window, promotional price, own allocation, per-customer limit — REST routes.

Admin: /api/v1/admin/flash-sales (list, create, read with live figures, edit, schedule, unschedule,
pause, resume, end). Shop: /api/v1/shop/{m}/flash-sales (running and coming), …/{id}."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from siyu.core.web import DbSession
from siyu.customers.deps import OptionalShopCustomer
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.promotions.schemas.flash_sales import FlashSaleBody
from siyu.promotions.service import flash_sales as service
from siyu.promotions.states.flash_sales import FlashSaleStatus

router = APIRouter(tags=["promotions"])

ADMIN = "/api/v1/admin/flash-sales"
SHOP = "/api/v1/shop/{m}/flash-sales"
PathId = Annotated[int, Path(gt=0, le=2**53)]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
StatusName = Literal[tuple(s.value for s in FlashSaleStatus)]  # type: ignore[valid-type]


def _fields(body: FlashSaleBody) -> dict[str, Any]:
    return {"title": body.title, "description": body.description, "starts_at": body.starts_at,
            "ends_at": body.ends_at, "allow_coupons": body.allow_coupons,
            "allow_member_discount": body.allow_member_discount,
            "items": [service.FlashItemIn(sku_id=i.sku_id, flash_price_cents=i.flash_price_cents,
                                          allocation=i.allocation, per_customer_limit=i.per_customer_limit)
                      for i in body.items]}


def _staff_read(session: Any, sale: Any, *, figures: bool = False) -> dict[str, Any]:
    data = service.sale_data(session, sale, staff=True)
    if figures:
        figs = service.live_figures(session, sale)
        for key in ("sold_out_at", "first_sold_out_at"):
            figs[key] = figs[key].isoformat() if figs[key] is not None else None
        data["figures"] = figs
    return data


@router.get(ADMIN)
def admin_flash_sales(session: DbSession, principal: Staff, status: StatusName | None = None,
                      cursor: Cursor = None, limit: Limit = None) -> dict:
    service.require_manager(principal)
    page = service.list_flash_sales(session, merchant_id=principal.merchant_id, status=status, cursor=cursor,
                                    limit=limit)
    by_sale = service.items_by_sale(session, [s.id for s in page.items])
    return {"items": [service.sale_data(session, s, staff=True, items=by_sale[s.id]) for s in page.items],
            "next_cursor": page.next_cursor}


@router.post(ADMIN, status_code=201)
def admin_flash_sale_create(body: FlashSaleBody, session: DbSession, principal: Staff) -> dict:
    sale = service.create_flash_sale(session, actor=principal, **_fields(body))
    return _staff_read(session, sale)


@router.get(f"{ADMIN}/{{flash_sale_id}}")
def admin_flash_sale(flash_sale_id: PathId, session: DbSession, principal: Staff) -> dict:
    service.require_manager(principal)
    sale = service.get_flash_sale(session, flash_sale_id, merchant_id=principal.merchant_id)
    return _staff_read(session, sale, figures=True)


@router.put(f"{ADMIN}/{{flash_sale_id}}")
def admin_flash_sale_update(flash_sale_id: PathId, body: FlashSaleBody, session: DbSession, principal: Staff) -> dict:
    sale = service.update_flash_sale(session, flash_sale_id, actor=principal, **_fields(body))
    return _staff_read(session, sale)


ACTIONS = {"schedule": service.schedule, "unschedule": service.unschedule, "pause": service.pause,
           "resume": service.resume, "end": service.end}


def _action(name: str) -> Any:
    fn = ACTIONS[name]

    def act(flash_sale_id: PathId, session: DbSession, principal: Staff) -> dict:
        return _staff_read(session, fn(session, flash_sale_id, actor=principal))

    act.__name__ = f"admin_flash_sale_{name}"
    return act


for _name in ACTIONS:
    router.post(f"{ADMIN}/{{flash_sale_id}}/{_name}", name=f"admin_flash_sale_{_name}")(_action(_name))


@router.get(SHOP)
def shop_flash_sales(merchant: ShopMerchant, session: DbSession, customer: OptionalShopCustomer) -> dict:
    sales = service.shop_flash_sales(session, merchant_id=merchant.id)
    by_sale = service.items_by_sale(session, [s.id for s in sales])
    customer_id = customer.customer_id if customer is not None else None
    return {"items": [service.sale_data(session, s, staff=False, items=by_sale[s.id], customer_id=customer_id)
                      for s in sales]}


@router.get(f"{SHOP}/{{flash_sale_id}}")
def shop_flash_sale(flash_sale_id: PathId, merchant: ShopMerchant, session: DbSession,
                    customer: OptionalShopCustomer) -> dict:
    sale = service.get_shop_flash_sale(session, flash_sale_id, merchant_id=merchant.id)
    return service.sale_data(session, sale, staff=False,
                             customer_id=customer.customer_id if customer is not None else None)
