"""Stored value (储值) as a payment method. The money lives in the membership domain's ledger, which
registers a `BalanceProvider` at import time; until one is registered, "balance" is unavailable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

from siyu.core.errors import Conflict
from siyu.payments.providers.base import (
    Notification,
    NotificationRejected,
    ProviderRefund,
    ProviderStart,
    StartContext,
)

if TYPE_CHECKING:
    from siyu.merchants.models import Merchant
    from siyu.payments.models import Payment, PaymentRefund


class BalanceUnavailable(Conflict):
    code = "balance_unavailable"
    message = "Paying with stored value is not available."


class BalanceProvider(Protocol):
    """Moves stored value in the caller's transaction; raises an AppError (e.g. Conflict
    "insufficient_balance") when it cannot. Both calls must be idempotent by payment_id / refund_id."""

    def charge(self, session: Session, *, merchant_id: int, customer_id: int, amount_cents: int, payment_id: int) -> None: ...

    def refund(self, session: Session, *, merchant_id: int, customer_id: int, amount_cents: int, payment_id: int,
               refund_id: int) -> None: ...


_balance: list[BalanceProvider] = []


def register_balance_provider(provider: BalanceProvider | None) -> None:
    """Plug in (or, with None, remove) the stored-value ledger behind the "balance" method."""
    _balance.clear()
    if provider is not None:
        _balance.append(provider)


def balance_provider() -> BalanceProvider | None:
    return _balance[0] if _balance else None


class BalancePaymentProvider:
    """The "balance" method: the charge happens during start, so the payment succeeds at once."""

    name = "balance"

    def _provider(self) -> BalanceProvider:
        provider = balance_provider()
        if provider is None:
            raise BalanceUnavailable()
        return provider

    def create(self, session: Session, payment: Payment, ctx: StartContext) -> ProviderStart:
        self._provider().charge(session, merchant_id=payment.merchant_id, customer_id=payment.customer_id,
                                amount_cents=payment.amount_cents, payment_id=payment.id)
        return ProviderStart(succeeded_txn_id=f"BAL{payment.out_trade_no}")

    def close(self, session: Session, payment: Payment, merchant: Merchant) -> None:
        return None

    def parse_notification(self, merchant: Merchant, headers: dict[str, str], body: bytes) -> Notification:
        raise NotificationRejected("stored value sends no notifications", status_code=404)

    def refund(self, session: Session, payment: Payment, refund: PaymentRefund, merchant: Merchant) -> ProviderRefund:
        self._provider().refund(session, merchant_id=payment.merchant_id, customer_id=payment.customer_id,
                                amount_cents=refund.amount_cents, payment_id=payment.id, refund_id=refund.id)
        return ProviderRefund(status="succeeded", provider_refund_id=f"BALR{refund.out_refund_no}")
