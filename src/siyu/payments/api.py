"""REST routes of payments: the customer's payment, sandbox confirm, provider webhooks, and the
staff's payment list and detail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse

from siyu.core.idempotency import run_idempotent
from siyu.core.web import DbSession
from siyu.customers.deps import ShopCustomer
from siyu.merchants.deps import ShopMerchant, Staff
from siyu.payments import service
from siyu.payments.models import Payment
from siyu.payments.schemas import (
    Id,
    MethodName,
    NotificationRead,
    PaymentDetail,
    PaymentPage,
    PaymentRead,
    PaymentStatusName,
    RefundRead,
    SandboxConfirmResult,
)

router = APIRouter(tags=["payments"])


async def raw_body(request: Request) -> bytes:
    """The request body as sent (signatures cover the exact bytes), cut one byte past the limit so
    that an oversized body is refused without reading all of it."""
    limit = service.MAX_NOTIFICATION_BYTES + 1
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


RawBody = Annotated[bytes, Depends(raw_body)]


def payment_read(payment: Payment) -> PaymentRead:
    return PaymentRead.model_validate(payment)


@router.get("/api/v1/shop/{m}/payments/{payment_id}", response_model=PaymentRead)
def shop_payment(payment_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession) -> PaymentRead:
    return payment_read(service.get_payment(session, merchant_id=merchant.id, payment_id=payment_id,
                                            customer_id=customer.subject_id))


@router.post("/api/v1/shop/{m}/payments/{payment_id}/sandbox-confirm", response_model=SandboxConfirmResult)
def sandbox_confirm(payment_id: Id, merchant: ShopMerchant, customer: ShopCustomer, session: DbSession,
                    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
                    ) -> JSONResponse:
    def confirm() -> tuple[int, dict]:
        payment = service.sandbox_confirm(session, merchant=merchant, payment_id=payment_id,
                                          customer_id=customer.subject_id)
        return 200, {"payment_id": payment.id, "status": payment.status}

    return run_idempotent(session, merchant_id=merchant.id, scope=f"payments.sandbox_confirm:customer:{customer.subject_id}",
                          key=idempotency_key, payload={"payment_id": payment_id}, fn=confirm)


@router.post("/webhooks/pay/{provider}/{m}")
def provider_webhook(merchant: ShopMerchant, request: Request, session: DbSession, body: RawBody,
                     provider: Annotated[str, Path(max_length=20)]) -> JSONResponse:
    """A provider's asynchronous notification. Answers in WeChat Pay's shape: 200 `{"code":
    "SUCCESS"}`, or 4xx `{"code": "FAIL", "message": …}` (the rejection is logged and committed)."""
    outcome = service.handle_notification(session, merchant=merchant, provider=provider,
                                          headers=dict(request.headers), body=body)
    return JSONResponse(outcome.response_body(), status_code=outcome.status_code)


@router.get("/api/v1/admin/payments", response_model=PaymentPage)
def admin_payments(session: DbSession, principal: Staff,
                   order_id: Annotated[int | None, Query(gt=0, le=2**53)] = None,
                   status: PaymentStatusName | None = None,
                   method: MethodName | None = None,
                   out_trade_no: Annotated[str | None, Query(max_length=32)] = None,
                   cursor: Annotated[str | None, Query(max_length=200)] = None,
                   limit: Annotated[int | None, Query(ge=1, le=100)] = None) -> PaymentPage:
    page = service.list_payments(session, actor=principal, order_id=order_id, status=status, method=method,
                                 out_trade_no=out_trade_no, cursor=cursor, limit=limit)
    return PaymentPage(items=[payment_read(p) for p in page.items], next_cursor=page.next_cursor)


@router.get("/api/v1/admin/payments/{payment_id}", response_model=PaymentDetail)
def admin_payment(payment_id: Id, session: DbSession, principal: Staff) -> PaymentDetail:
    payment = service.get_payment_for_staff(session, payment_id, actor=principal)
    refunds = service.refunds_of(session, merchant_id=payment.merchant_id, payment_id=payment.id)
    notes = service.notifications_of(session, merchant_id=payment.merchant_id, payment_id=payment.id)
    return PaymentDetail(**payment_read(payment).model_dump(), refunds=[RefundRead.model_validate(r) for r in refunds],
                         notifications=[NotificationRead.model_validate(n) for n in notes])
