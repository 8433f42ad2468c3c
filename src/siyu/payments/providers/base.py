"""The provider interface every payment method implements, and what passes across it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from siyu.core.errors import AppError

if TYPE_CHECKING:
    from siyu.merchants.models import Merchant
    from siyu.payments.models import Payment, PaymentRefund

# Only these headers of a notification are kept in the log.
LOGGED_HEADERS = ("content-type", "user-agent", "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-serial",
                  "wechatpay-signature", "wechatpay-signature-type", "sandbox-timestamp", "sandbox-nonce",
                  "sandbox-signature")
# Notifications older (or further in the future) than this are refused: a captured one cannot be
# replayed much later.
MAX_NOTIFICATION_AGE = dt.timedelta(minutes=5)


class NotificationRejected(Exception):
    """The notification is not genuine or not usable (bad signature, stale, undecryptable)."""

    def __init__(self, reason: str, *, status_code: int = 400, claimed_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.claimed_id = claimed_id


class ProviderError(AppError):
    """The provider refused or could not be reached. 502: the fault is upstream, not the client's."""

    status_code = 502
    code = "provider_error"
    message = "The payment provider could not process this; try again later."


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    message = "The payment provider is unavailable; try again later."


@dataclasses.dataclass(frozen=True)
class StartContext:
    merchant: Merchant
    payer_openid: str | None = None
    client_ip: str = "127.0.0.1"


@dataclasses.dataclass
class ProviderStart:
    """What a provider answers to starting a payment: where or how the customer pays next."""

    sandbox_confirm_url: str | None = None
    pay_page_url: str | None = None
    wechatpay: dict[str, str] | None = None
    h5_url: str | None = None
    # Set when the money moved right away (stored value): the payment succeeds in the same call.
    succeeded_txn_id: str | None = None
    provider_data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Notification:
    """A verified notification, in our words."""

    kind: str  # "paid", "refunded", "refund_failed" or "other"
    notification_id: str | None
    out_trade_no: str | None = None
    provider_txn_id: str | None = None
    amount_cents: int | None = None
    paid_at: dt.datetime | None = None
    out_refund_no: str | None = None
    provider_refund_id: str | None = None
    refund_amount_cents: int | None = None
    event_type: str = ""
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ProviderRefund:
    status: str  # "succeeded", "pending" or "failed"
    provider_refund_id: str | None = None
    error: str | None = None


class PaymentProvider(Protocol):
    name: str

    def create(self, session: Session, payment: Payment, ctx: StartContext) -> ProviderStart:
        """Ask the provider to take `payment.amount_cents`; raise ProviderError when it refuses."""
        ...

    def close(self, session: Session, payment: Payment, merchant: Merchant) -> None:
        """Tell the provider an unpaid payment is abandoned (best effort)."""
        ...

    def parse_notification(self, merchant: Merchant, headers: dict[str, str], body: bytes) -> Notification:
        """Verify and decode a notification; raise NotificationRejected when it is not genuine."""
        ...

    def refund(self, session: Session, payment: Payment, refund: PaymentRefund, merchant: Merchant) -> ProviderRefund:
        """Give back `refund.amount_cents` of a succeeded payment."""
        ...


_providers: dict[str, PaymentProvider] = {}


def register_provider(provider: PaymentProvider) -> PaymentProvider:
    _providers[provider.name] = provider
    return provider


def get_provider(name: str) -> PaymentProvider | None:
    return _providers.get(name)


def provider_names() -> tuple[str, ...]:
    return tuple(_providers)


def parse_timestamp(value: str | None) -> dt.datetime:
    """A Unix-seconds header as an aware datetime; NotificationRejected when missing or garbage."""
    # isdigit() alone also admits non-ASCII digits ("²"), which int() refuses.
    if not value or not value.isascii() or not value.isdigit() or len(value) > 12:
        raise NotificationRejected("missing or malformed timestamp")
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:  # past year 9999
        raise NotificationRejected("missing or malformed timestamp") from exc


def check_fresh(at: dt.datetime, now: dt.datetime) -> None:
    if abs(now - at) > MAX_NOTIFICATION_AGE:
        raise NotificationRejected("stale timestamp")
