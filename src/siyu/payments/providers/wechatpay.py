"""WeChat Pay API v3: JSAPI and H5 prepay, notifications, refunds.

Requests carry the v3 Authorization header (`WECHATPAY2-SHA256-RSA2048`, an RSA-SHA256 PKCS#1 v1.5
signature with the merchant's private key over "METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n").
Answers and notifications are signed by the platform key ("TIMESTAMP\\nNONCE\\nBODY\\n",
`Wechatpay-Signature`, `Wechatpay-Serial`), and a notification's `resource` is AEAD_AES_256_GCM
encrypted with the merchant's APIv3 key. Per-merchant configuration lives in Merchant.settings.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import logging
import secrets
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.core import clock
from siyu.core.errors import Conflict
from siyu.payments.providers.base import (
    Notification,
    NotificationRejected,
    ProviderError,
    ProviderRefund,
    ProviderStart,
    ProviderUnavailable,
    StartContext,
    check_fresh,
    parse_timestamp,
)

if TYPE_CHECKING:
    from siyu.merchants.models import Merchant
    from siyu.payments.models import Payment, PaymentRefund

log = logging.getLogger(__name__)

SETTING_KEYS = ("wechatpay_mchid", "wechatpay_appid", "wechatpay_serial_no", "wechatpay_private_key_pem",
                "wechatpay_apiv3_key", "wechatpay_platform_serial", "wechatpay_platform_public_key_pem")
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


class WechatPayNotConfigured(Conflict):
    code = "wechatpay_not_configured"
    message = "WeChat Pay is not configured for this shop."


class Config:
    """A merchant's WeChat Pay settings, checked and with the keys loaded."""

    def __init__(self, settings: dict[str, Any]) -> None:
        missing = [k for k in SETTING_KEYS if not settings.get(k)]
        if missing:
            raise WechatPayNotConfigured(details={"missing": missing})
        self.mchid = str(settings["wechatpay_mchid"])
        self.appid = str(settings["wechatpay_appid"])
        self.serial_no = str(settings["wechatpay_serial_no"])
        self.apiv3_key = str(settings["wechatpay_apiv3_key"]).encode()
        self.platform_serial = str(settings["wechatpay_platform_serial"])
        if len(self.apiv3_key) != 32:
            raise WechatPayNotConfigured("The WeChat Pay APIv3 key must be 32 bytes.")
        try:
            self.private_key = _private_key(str(settings["wechatpay_private_key_pem"]))
            self.platform_key = _public_key(str(settings["wechatpay_platform_public_key_pem"]))
        except (ValueError, TypeError) as exc:
            raise WechatPayNotConfigured("The WeChat Pay keys cannot be read.") from exc


@lru_cache(maxsize=64)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@lru_cache(maxsize=64)
def _public_key(pem: str) -> rsa.RSAPublicKey:
    data = pem.encode()
    if b"CERTIFICATE" in data:
        from cryptography import x509

        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def config_for(merchant: Merchant) -> Config:
    return Config(merchant.settings or {})


def rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def authorization(cfg: Config, method: str, path_with_query: str, body: bytes, *, timestamp: str | None = None,
                  nonce: str | None = None) -> str:
    """The v3 Authorization header for one request."""
    ts = timestamp or str(int(clock.now().timestamp()))
    nonce = nonce or secrets.token_hex(16)
    message = f"{method}\n{path_with_query}\n{ts}\n{nonce}\n".encode() + body + b"\n"
    signature = rsa_sign(cfg.private_key, message)
    return (f'WECHATPAY2-SHA256-RSA2048 mchid="{cfg.mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{ts}",serial_no="{cfg.serial_no}"')


def verify_platform_signature(cfg: Config, headers: dict[str, str], body: bytes, *, check_age: bool = True) -> None:
    """Check a platform-signed message (notification or answer); NotificationRejected if not genuine."""
    ts, nonce, signature, serial = (headers.get("wechatpay-timestamp"), headers.get("wechatpay-nonce"),
                                    headers.get("wechatpay-signature"), headers.get("wechatpay-serial"))
    if not ts or not nonce or not signature or not serial:
        raise NotificationRejected("missing signature headers", status_code=401)
    if not hmac.compare_digest(serial.encode()[:100], cfg.platform_serial.encode()):
        raise NotificationRejected("unknown platform serial", status_code=401)
    at = parse_timestamp(ts)
    message = ts.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    if len(signature) > 1024 or not rsa_verify(cfg.platform_key, message, signature):
        raise NotificationRejected("bad signature", status_code=401)
    if check_age:
        check_fresh(at, clock.now())


def decrypt_resource(cfg: Config, resource: Any) -> dict[str, Any]:
    if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise NotificationRejected("unsupported resource")
    try:
        nonce = str(resource["nonce"]).encode()
        associated = str(resource.get("associated_data") or "").encode()
        ciphertext = base64.b64decode(str(resource["ciphertext"]), validate=True)
        plain = AESGCM(cfg.apiv3_key).decrypt(nonce, ciphertext, associated)
        data = json.loads(plain)
    except (KeyError, ValueError, binascii.Error, InvalidTag) as exc:
        raise NotificationRejected("resource cannot be decrypted") from exc
    if not isinstance(data, dict):
        raise NotificationRejected("resource is not a JSON object")
    return data


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(data: dict[str, Any], key: str, max_length: int = 64) -> str | None:
    value = data.get(key)
    return str(value).replace("\x00", "")[:max_length] if value is not None else None


def signed_request(cfg: Config, method: str, path: str, payload: dict[str, Any] | None, *,
                   platform_serial: bool = False) -> tuple[int, dict[str, Any]]:
    """One API v3 request signed with the merchant's key, to the configured WeChat Pay base URL:
    (HTTP status, JSON body or {}). A success answer must carry the platform's signature, otherwise
    someone in between made it up: raises NotificationRejected; httpx.HTTPError when it could not be
    sent. `platform_serial` adds the Wechatpay-Serial header (requests with encrypted fields)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() if payload is not None else b""
    headers = {"Authorization": authorization(cfg, method, path, body), "Accept": "application/json",
               "Content-Type": "application/json", "User-Agent": "siyu"}
    if platform_serial:
        headers["Wechatpay-Serial"] = cfg.platform_serial
    base = get_settings().wechatpay_api_base.rstrip("/")
    with httpx.Client(timeout=TIMEOUT) as client:
        response = client.request(method, base + path, content=body, headers=headers)
    data: dict[str, Any] = {}
    if response.content:
        try:
            parsed = response.json()
            data = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            data = {}
    if response.is_success and response.content:
        lower = {k.lower(): v for k, v in response.headers.items()}
        verify_platform_signature(cfg, lower, response.content, check_age=False)
    return response.status_code, data


class WechatPayProvider:
    name = "wechatpay"

    # -------------------------------------------------------------- HTTP

    def _request(self, cfg: Config, method: str, path: str, payload: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        try:
            return signed_request(cfg, method, path, payload)
        except httpx.HTTPError as exc:
            log.warning("wechatpay %s %s failed: %r", method, path, exc)
            raise ProviderUnavailable() from exc
        except NotificationRejected as exc:
            log.warning("wechatpay answer to %s %s has a bad signature: %s", method, path, exc.reason)
            raise ProviderError("The payment provider's answer could not be verified.",
                                code="provider_signature_invalid") from exc

    def _fail(self, status: int, data: dict[str, Any]) -> ProviderError:
        return ProviderError(details={"status": status, "provider_code": str(data.get("code", ""))[:64],
                                      "provider_message": str(data.get("message", ""))[:200]})

    # -------------------------------------------------------------- payments

    def create(self, session: Session, payment: Payment, ctx: StartContext) -> ProviderStart:
        cfg = config_for(ctx.merchant)
        base = get_settings().public_base_url.rstrip("/")
        payload: dict[str, Any] = {
            "appid": cfg.appid,
            "mchid": cfg.mchid,
            "description": (payment.description or payment.order_no or payment.out_trade_no)[:127],
            "out_trade_no": payment.out_trade_no,
            "notify_url": f"{base}/webhooks/pay/wechatpay/{ctx.merchant.slug}",
            "amount": {"total": payment.amount_cents, "currency": "CNY"},
        }
        if payment.expires_at is not None:
            payload["time_expire"] = payment.expires_at.astimezone(SHANGHAI).isoformat(timespec="seconds")
        if ctx.payer_openid:
            payload["payer"] = {"openid": ctx.payer_openid}
            status, data = self._request(cfg, "POST", "/v3/pay/transactions/jsapi", payload)
            prepay_id = data.get("prepay_id")
            if status != 200 or not isinstance(prepay_id, str) or not prepay_id:
                raise self._fail(status, data)
            params = self.jsapi_params(cfg, prepay_id)
            return ProviderStart(wechatpay=params, provider_data={"prepay_id": prepay_id, "trade_type": "JSAPI"})
        payload["scene_info"] = {"payer_client_ip": ctx.client_ip or "127.0.0.1", "h5_info": {"type": "Wap"}}
        status, data = self._request(cfg, "POST", "/v3/pay/transactions/h5", payload)
        h5_url = data.get("h5_url")
        if status != 200 or not isinstance(h5_url, str) or not h5_url:
            raise self._fail(status, data)
        return ProviderStart(h5_url=h5_url, provider_data={"h5_url": h5_url, "trade_type": "H5"})

    def jsapi_params(self, cfg: Config, prepay_id: str) -> dict[str, str]:
        """What the mini-program or WeChat browser passes to wx.requestPayment."""
        ts = str(int(clock.now().timestamp()))
        nonce = secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        pay_sign = rsa_sign(cfg.private_key, f"{cfg.appid}\n{ts}\n{nonce}\n{package}\n".encode())
        return {"appId": cfg.appid, "timeStamp": ts, "nonceStr": nonce, "package": package, "signType": "RSA",
                "paySign": pay_sign}

    def close(self, session: Session, payment: Payment, merchant: Merchant) -> None:
        try:
            cfg = config_for(merchant)
            path = f"/v3/pay/transactions/out-trade-no/{quote(payment.out_trade_no, safe='')}/close"
            status, data = self._request(cfg, "POST", path, {"mchid": cfg.mchid})
            if status >= 300:
                log.info("wechatpay close of %s answered %s %s", payment.out_trade_no, status, data)
        except (ProviderError, WechatPayNotConfigured):
            # Best effort: if the customer still pays, the late notification records it and orders refunds.
            log.info("wechatpay close of %s failed", payment.out_trade_no, exc_info=True)

    # -------------------------------------------------------------- notifications

    def parse_notification(self, merchant: Merchant, headers: dict[str, str], body: bytes) -> Notification:
        claimed = None
        try:
            outer = json.loads(body)
            if isinstance(outer, dict) and outer.get("id") is not None:
                claimed = str(outer["id"]).replace("\x00", "")[:64]
        except ValueError:
            outer = None
        try:
            cfg = config_for(merchant)
        except WechatPayNotConfigured as exc:
            raise NotificationRejected("wechatpay not configured", status_code=404, claimed_id=claimed) from exc
        try:
            verify_platform_signature(cfg, headers, body)
            if not isinstance(outer, dict):
                raise NotificationRejected("body is not a JSON object")
            event_type = str(outer.get("event_type", ""))[:40]
            resource = decrypt_resource(cfg, outer.get("resource"))
            if resource.get("mchid") not in (None, cfg.mchid):
                raise NotificationRejected("mchid does not match")
        except NotificationRejected as exc:
            exc.claimed_id = claimed
            raise
        amount = resource.get("amount") if isinstance(resource.get("amount"), dict) else {}
        common: dict[str, Any] = {"notification_id": claimed, "event_type": event_type, "data": resource,
                                  "out_trade_no": _text(resource, "out_trade_no", 32)}
        if event_type == "TRANSACTION.SUCCESS":
            if resource.get("trade_state") != "SUCCESS":
                raise NotificationRejected("trade_state is not SUCCESS", claimed_id=claimed)
            return Notification(kind="paid", provider_txn_id=_text(resource, "transaction_id"),
                                amount_cents=_int(amount.get("total")),
                                paid_at=_parse_time(resource.get("success_time")) or clock.now(), **common)
        if event_type.startswith("REFUND."):
            kind = "refunded" if event_type == "REFUND.SUCCESS" and resource.get("refund_status") == "SUCCESS" \
                else "refund_failed"
            return Notification(kind=kind, out_refund_no=_text(resource, "out_refund_no"),
                                provider_refund_id=_text(resource, "refund_id"),
                                refund_amount_cents=_int(amount.get("refund")), **common)
        return Notification(kind="other", **common)

    # -------------------------------------------------------------- refunds

    def refund(self, session: Session, payment: Payment, refund: PaymentRefund, merchant: Merchant) -> ProviderRefund:
        cfg = config_for(merchant)
        base = get_settings().public_base_url.rstrip("/")
        payload: dict[str, Any] = {
            "out_trade_no": payment.out_trade_no,
            "out_refund_no": refund.out_refund_no,
            "notify_url": f"{base}/webhooks/pay/wechatpay/{merchant.slug}",
            "amount": {"refund": refund.amount_cents, "total": payment.amount_cents, "currency": "CNY"},
        }
        if refund.reason:
            payload["reason"] = refund.reason[:80]
        try:
            status, data = self._request(cfg, "POST", "/v3/refund/domestic/refunds", payload)
        except ProviderUnavailable:
            # We do not know whether WeChat Pay got it: stay pending; a retry with the same
            # out_refund_no is safe, and the REFUND notification settles it.
            return ProviderRefund(status="pending", error="provider unavailable")
        refund_id = _text(data, "refund_id")
        if status == 200:
            state = data.get("status")
            if state == "SUCCESS":
                return ProviderRefund(status="succeeded", provider_refund_id=refund_id)
            if state == "PROCESSING":
                return ProviderRefund(status="pending", provider_refund_id=refund_id)
            return ProviderRefund(status="failed", provider_refund_id=refund_id, error=f"status {state}"[:500])
        if status >= 500:
            return ProviderRefund(status="pending", error=f"HTTP {status}")
        return ProviderRefund(status="failed", error=f"{data.get('code', status)}: {data.get('message', '')}"[:500])
