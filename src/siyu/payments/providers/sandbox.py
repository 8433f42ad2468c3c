"""The embedded sandbox provider: no real money, but the same flow as WeChat Pay.

Starting a payment gives a confirm URL and an H5 pay page. Confirming builds a notification exactly
as a provider would (JSON body; `Sandbox-Timestamp`, `Sandbox-Nonce` and `Sandbox-Signature` =
base64 HMAC-SHA256 over "timestamp\\nnonce\\nbody\\n" with a per-merchant key derived from the
secret key) and hands it, raw, to the handler behind `POST /webhooks/pay/sandbox/{m}`. Refunds
succeed at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.core import clock, ids
from siyu.payments.providers.base import (
    Notification,
    NotificationRejected,
    ProviderRefund,
    ProviderStart,
    StartContext,
    check_fresh,
    parse_timestamp,
)

if TYPE_CHECKING:
    from siyu.merchants.models import Merchant
    from siyu.payments.models import Payment, PaymentRefund


def merchant_key(merchant_id: int) -> bytes:
    """The merchant's sandbox signing key: never the same for two merchants."""
    secret = get_settings().secret_key.encode()
    return hmac.new(secret, f"siyu-sandbox-pay:{merchant_id}".encode(), hashlib.sha256).digest()


def sign(merchant_id: int, timestamp: str, nonce: str, body: bytes) -> str:
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    return base64.b64encode(hmac.new(merchant_key(merchant_id), message, hashlib.sha256).digest()).decode()


def signed_headers(merchant_id: int, body: bytes, *, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp or str(int(clock.now().timestamp()))
    nonce = ids.token_hex(16)
    return {"Content-Type": "application/json", "Sandbox-Timestamp": ts, "Sandbox-Nonce": nonce,
            "Sandbox-Signature": sign(merchant_id, ts, nonce, body)}


def build_paid_notification(payment: Payment) -> tuple[dict[str, str], bytes]:
    """The notification the sandbox "provider" sends when the customer confirms."""
    now = clock.now()
    payload = {
        "id": ids.uuid_hex(),
        "create_time": now.isoformat(),
        "event_type": "TRANSACTION.SUCCESS",
        "out_trade_no": payment.out_trade_no,
        "transaction_id": f"SBX{payment.out_trade_no}",
        "trade_state": "SUCCESS",
        "success_time": now.isoformat(),
        "amount": {"total": payment.amount_cents, "currency": "CNY"},
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    return signed_headers(payment.merchant_id, body), body


class SandboxProvider:
    name = "sandbox"

    def create(self, session: Session, payment: Payment, ctx: StartContext) -> ProviderStart:
        slug = ctx.merchant.slug
        return ProviderStart(
            sandbox_confirm_url=f"/api/v1/shop/{slug}/payments/{payment.id}/sandbox-confirm",
            pay_page_url=f"/shop/{slug}/pay/{payment.id}",
        )

    def close(self, session: Session, payment: Payment, merchant: Merchant) -> None:
        return None

    def parse_notification(self, merchant: Merchant, headers: dict[str, str], body: bytes) -> Notification:
        claimed = _claimed_id(body)
        ts, nonce, signature = (headers.get("sandbox-timestamp"), headers.get("sandbox-nonce"),
                                headers.get("sandbox-signature"))
        if not ts or not nonce or not signature:
            raise NotificationRejected("missing signature headers", status_code=401, claimed_id=claimed)
        try:
            at = parse_timestamp(ts)
        except NotificationRejected as exc:
            exc.claimed_id = claimed
            raise
        if len(nonce) > 64 or not hmac.compare_digest(sign(merchant.id, ts, nonce, body).encode(),
                                                      signature.encode()[:200]):
            raise NotificationRejected("bad signature", status_code=401, claimed_id=claimed)
        try:
            check_fresh(at, clock.now())
        except NotificationRejected as exc:
            exc.claimed_id = claimed
            raise
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise NotificationRejected("body is not JSON", claimed_id=claimed) from exc
        if not isinstance(data, dict):
            raise NotificationRejected("body is not a JSON object", claimed_id=claimed)
        return _notification(data)

    def refund(self, session: Session, payment: Payment, refund: PaymentRefund, merchant: Merchant) -> ProviderRefund:
        return ProviderRefund(status="succeeded", provider_refund_id=f"SBXR{refund.out_refund_no}")


def _claimed_id(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return str(value).replace("\x00", "")[:64] if value is not None else None


def _text(data: dict[str, Any], key: str, max_length: int = 64) -> str | None:
    value = data.get(key)
    return str(value).replace("\x00", "")[:max_length] if value is not None else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _notification(data: dict[str, Any]) -> Notification:
    event_type = str(data.get("event_type", ""))[:40]
    amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
    common = {"notification_id": _text(data, "id"), "event_type": event_type, "data": data,
              "out_trade_no": _text(data, "out_trade_no", 32)}
    if event_type == "TRANSACTION.SUCCESS":
        if data.get("trade_state") != "SUCCESS":
            raise NotificationRejected("trade_state is not SUCCESS", claimed_id=common["notification_id"])
        return Notification(kind="paid", provider_txn_id=_text(data, "transaction_id"), amount_cents=_int(amount.get("total")),
                            paid_at=clock.now(), **common)
    if event_type == "REFUND.SUCCESS":
        return Notification(kind="refunded", out_refund_no=_text(data, "out_refund_no"),
                            provider_refund_id=_text(data, "refund_id"), refund_amount_cents=_int(amount.get("refund")),
                            **common)
    return Notification(kind="other", **common)
