"""Pages of payments: the H5 sandbox pay page (/shop/{m}/pay/{id}) and the console's payment list
and detail (/console/payments…)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from siyu.core import clock
from siyu.core.errors import AppError
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.core.web import DbSession
from siyu.customers.deps import ShopForm, ShopPageCustomer
from siyu.merchants.deps import ConsoleStaff, ShopMerchant
from siyu.merchants.models import Merchant
from siyu.payments import service
from siyu.payments.models import Payment
from siyu.payments.states import PaymentStatus

router = APIRouter(include_in_schema=False)

PaymentId = Annotated[int, Path(gt=0, le=2**53)]
STATUSES = tuple(s.value for s in PaymentStatus)
LABELS = {
    "status": {"created": "Awaiting payment", "succeeded": "Paid", "closed": "Closed", "failed": "Failed"},
    "method": {"sandbox": "Sandbox", "wechatpay": "WeChat Pay", "balance": "Stored value"},
    "refund_state": {"none": "Not refunded", "partly_refunded": "Partly refunded", "refunded": "Refunded"},
    "refund_status": {"pending": "Processing", "succeeded": "Refunded", "failed": "Refund failed"},
    "outcome": {"paid": "Paid", "paid_late": "Paid late", "refunded": "Refunded", "refund_failed": "Refund failed",
                "duplicate": "Duplicate", "ignored": "Ignored", "rejected": "Rejected"},
}


# ---------------------------------------------------------------- H5 pay page


def _pay_page(request: Request, merchant: Merchant, payment: Payment, *, error: str | None = None,
              status_code: int = 200) -> Response:
    return render(request, "payments/pay.html", {
        "payment": payment, "tab": "me", "flash": error, "flash_kind": "error",
        "expired": payment.status == PaymentStatus.CREATED and payment.expires_at is not None
        and payment.expires_at <= clock.now(),
        "order_url": f"/shop/{merchant.slug}/orders/{payment.order_id}",
    }, status_code=status_code)


@router.get("/shop/{m}/pay/{payment_id}")
def pay_page(payment_id: PaymentId, request: Request, merchant: ShopMerchant, customer: ShopPageCustomer,
             session: DbSession) -> Response:
    payment = service.get_payment(session, merchant_id=merchant.id, payment_id=payment_id,
                                  customer_id=customer.subject_id)
    return _pay_page(request, merchant, payment)


@router.post("/shop/{m}/pay/{payment_id}")
def pay_confirm(payment_id: PaymentId, request: Request, merchant: ShopMerchant, customer: ShopPageCustomer,
                session: DbSession, form: ShopForm) -> Response:
    try:
        payment = service.sandbox_confirm(session, merchant=merchant, payment_id=payment_id,
                                          customer_id=customer.subject_id)
    except AppError as exc:
        if exc.status_code != 409:
            raise
        payment = service.get_payment(session, merchant_id=merchant.id, payment_id=payment_id,
                                      customer_id=customer.subject_id)
        return _pay_page(request, merchant, payment, error=exc.translated(), status_code=409)
    return RedirectResponse(f"/shop/{merchant.slug}/orders/{payment.order_id}?paid=1", status_code=303)


# ---------------------------------------------------------------- console


def _filters(params: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    raw = {k: (params.get(k) or "").strip()[:100] for k in ("status", "method", "order_id", "out_trade_no")}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if raw["status"] in STATUSES:
        values["status"] = raw["status"]
    if raw["method"] in service.METHODS:
        values["method"] = raw["method"]
    if raw["order_id"]:
        if raw["order_id"].isdigit() and 0 < int(raw["order_id"]) <= 2**53:
            values["order_id"] = int(raw["order_id"])
        else:
            errors["order_id"] = _("Enter an order id (a whole number).")
    if raw["out_trade_no"]:
        values["out_trade_no"] = raw["out_trade_no"][:32]
    return values, raw, errors


@router.get("/console/payments")
def payment_list(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    values, raw, errors = _filters(request.query_params)
    cursor = (request.query_params.get("cursor") or "")[:200] or None
    try:
        page = service.list_payments(session, actor=principal, cursor=cursor, limit=50, **values)
    except AppError:  # a mangled cursor: start again from the first page
        page = service.list_payments(session, actor=principal, limit=50, **values)
    next_url = None
    if page.next_cursor:
        next_url = "/console/payments?" + urlencode({**{k: v for k, v in raw.items() if v}, "cursor": page.next_cursor})
    return render(request, "payments/console_list.html", {
        "active_menu": "orders", "labels": LABELS, "payments": page.items, "raw": raw, "errors": errors, "statuses": STATUSES,
        "methods": service.METHODS, "next_url": next_url, "filtered": any(raw.values()),
    }, status_code=422 if errors else 200)


@router.get("/console/payments/{payment_id}")
def payment_detail(payment_id: PaymentId, request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    payment = service.get_payment_for_staff(session, payment_id, actor=principal)
    return render(request, "payments/console_detail.html", {
        "active_menu": "orders", "labels": LABELS, "payment": payment,
        "refunds": service.refunds_of(session, merchant_id=payment.merchant_id, payment_id=payment.id),
        "notifications": service.notifications_of(session, merchant_id=payment.merchant_id, payment_id=payment.id),
    })
