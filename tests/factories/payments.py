"""Factories for payments: payment rows in any status, and signed provider notifications
(sandbox, and WeChat Pay with locally generated keys)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import itertools
import json
import os
import secrets
import uuid
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.customers.models import Customer
from siyu.merchants.models import Merchant
from siyu.payments.models import Payment, PaymentRefund
from siyu.payments.providers import sandbox
from tests.factories.customers import make_customer

_seq = itertools.count(1)


def next_order_id() -> int:
    """An opaque order id (payments never looks orders up)."""
    return 900_000 + next(_seq)


def make_payment(session: Session, *, merchant: Merchant, customer: Customer | None = None, order_id: int | None = None,
                 amount_cents: int = 1990, method: str = "sandbox", status: str = "created", refunded_cents: int = 0,
                 order_no: str | None = None, expires_at: dt.datetime | None = None,
                 provider_txn_id: str | None = None) -> Payment:
    """A payment row as start_payment would leave it (or later: succeeded, closed …)."""
    customer = customer or make_customer(session, merchant=merchant)
    order_id = order_id or next_order_id()
    now = clock.now()
    payment = Payment(merchant_id=merchant.id, customer_id=customer.id, order_id=order_id,
                      order_no=order_no or f"O{order_id}", method=method, description="测试商品",
                      amount_cents=amount_cents, refunded_cents=refunded_cents, status=status,
                      out_trade_no="T" + secrets.token_hex(15), provider_data={}, created_at=now,
                      expires_at=expires_at or now + dt.timedelta(minutes=15))
    session.add(payment)
    session.flush()
    payment.out_trade_no = f"P{clock.local(now):%Y%m%d}{payment.id:012d}"
    if status == "succeeded":
        payment.paid_at = now
        payment.provider_txn_id = provider_txn_id or f"TXN{payment.id}"
    if status == "closed":
        payment.closed_at = now
    session.flush()
    return payment


def make_refund(session: Session, *, payment: Payment, amount_cents: int = 100, status: str = "pending",
                refund_key: str | None = None) -> PaymentRefund:
    row = PaymentRefund(merchant_id=payment.merchant_id, payment_id=payment.id, amount_cents=amount_cents,
                        status=status, refund_key=refund_key or f"key-{uuid.uuid4().hex}",
                        out_refund_no="T" + secrets.token_hex(15), reason="", attempts=1, created_at=clock.now())
    session.add(row)
    session.flush()
    row.out_refund_no = f"R{clock.local(clock.now()):%Y%m%d}{row.id:012d}"
    session.flush()
    return row


# ---------------------------------------------------------------- sandbox notifications


def sandbox_notification(payment: Payment, *, amount_cents: int | None = None, event_type: str = "TRANSACTION.SUCCESS",
                         notification_id: str | None = None, timestamp: dt.datetime | None = None,
                         merchant_id: int | None = None, extra: dict[str, Any] | None = None) -> tuple[dict[str, str], bytes]:
    """A sandbox notification signed with the key of `merchant_id` (default: the payment's)."""
    payload: dict[str, Any] = {
        "id": notification_id or uuid.uuid4().hex,
        "event_type": event_type,
        "out_trade_no": payment.out_trade_no,
        "transaction_id": f"SBX{payment.out_trade_no}",
        "trade_state": "SUCCESS",
        "amount": {"total": payment.amount_cents if amount_cents is None else amount_cents, "currency": "CNY"},
        **(extra or {}),
    }
    body = json.dumps(payload).encode()
    ts = str(int((timestamp or clock.now()).timestamp()))
    return sandbox.signed_headers(merchant_id or payment.merchant_id, body, timestamp=ts), body


# ---------------------------------------------------------------- WeChat Pay


@dataclasses.dataclass(frozen=True)
class WechatKeys:
    merchant_key: rsa.RSAPrivateKey
    platform_key: rsa.RSAPrivateKey
    apiv3_key: str
    mchid: str = "1900000109"
    appid: str = "wxd678efh567hg6787"
    serial_no: str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    platform_serial: str = "7132D72A03E93CDDF8C03BBD1F37EEDF9B1FA3A8"

    @property
    def merchant_private_pem(self) -> str:
        return self.merchant_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode()

    @property
    def platform_public_pem(self) -> str:
        return self.platform_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def merchant_settings(self) -> dict[str, str]:
        return {"wechatpay_mchid": self.mchid, "wechatpay_appid": self.appid, "wechatpay_serial_no": self.serial_no,
                "wechatpay_private_key_pem": self.merchant_private_pem, "wechatpay_apiv3_key": self.apiv3_key,
                "wechatpay_platform_serial": self.platform_serial,
                "wechatpay_platform_public_key_pem": self.platform_public_pem}


@lru_cache
def wechat_keys() -> WechatKeys:
    """Keys generated once per test run: the merchant's API key and WeChat's platform key."""
    return WechatKeys(merchant_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
                      platform_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
                      apiv3_key=base64.b32encode(os.urandom(20)).decode()[:32])


def configure_wechatpay(session: Session, merchant: Merchant, keys: WechatKeys | None = None) -> WechatKeys:
    keys = keys or wechat_keys()
    merchant.settings = {**(merchant.settings or {}), **keys.merchant_settings()}
    session.flush()
    return keys


def platform_sign(key: rsa.RSAPrivateKey, timestamp: str, nonce: str, body: bytes) -> str:
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def encrypt_resource(apiv3_key: str, data: dict[str, Any], *, associated_data: str = "transaction") -> dict[str, str]:
    nonce = secrets.token_hex(6)
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), json.dumps(data).encode(), associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ciphertext).decode(), "nonce": nonce,
            "associated_data": associated_data, "original_type": "transaction"}


def wechat_notification(resource: dict[str, Any], *, event_type: str = "TRANSACTION.SUCCESS",
                        keys: WechatKeys | None = None, notification_id: str | None = None,
                        timestamp: dt.datetime | None = None, signing_key: rsa.RSAPrivateKey | None = None,
                        serial: str | None = None, apiv3_key: str | None = None) -> tuple[dict[str, str], bytes]:
    """A notification as WeChat Pay sends it: resource encrypted with the APIv3 key, body signed by
    the platform key (or `signing_key`, to forge one)."""
    keys = keys or wechat_keys()
    payload = {
        "id": notification_id or str(uuid.uuid4()),
        "create_time": clock.now().isoformat(),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": encrypt_resource(apiv3_key or keys.apiv3_key, resource),
    }
    body = json.dumps(payload, ensure_ascii=False).encode()
    ts = str(int((timestamp or clock.now()).timestamp()))
    nonce = secrets.token_hex(16)
    headers = {"Content-Type": "application/json", "Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
               "Wechatpay-Serial": serial or keys.platform_serial,
               "Wechatpay-Signature": platform_sign(signing_key or keys.platform_key, ts, nonce, body),
               "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}
    return headers, body


def transaction_resource(payment: Payment, *, amount_cents: int | None = None, keys: WechatKeys | None = None,
                         trade_state: str = "SUCCESS", transaction_id: str | None = None) -> dict[str, Any]:
    keys = keys or wechat_keys()
    return {"mchid": keys.mchid, "appid": keys.appid, "out_trade_no": payment.out_trade_no,
            "transaction_id": transaction_id or f"4200001{payment.id:012d}", "trade_type": "JSAPI",
            "trade_state": trade_state, "trade_state_desc": "支付成功", "bank_type": "OTHERS",
            "success_time": clock.now().astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(timespec="seconds"),
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": payment.amount_cents if amount_cents is None else amount_cents,
                       "payer_total": payment.amount_cents, "currency": "CNY", "payer_currency": "CNY"}}


def refund_resource(payment: Payment, refund: PaymentRefund, *, status: str = "SUCCESS", keys: WechatKeys | None = None,
                    amount_cents: int | None = None) -> dict[str, Any]:
    keys = keys or wechat_keys()
    return {"mchid": keys.mchid, "out_trade_no": payment.out_trade_no, "transaction_id": payment.provider_txn_id,
            "out_refund_no": refund.out_refund_no, "refund_id": f"50000{refund.id:012d}", "refund_status": status,
            "success_time": clock.now().isoformat(), "user_received_account": "招商银行信用卡0403",
            "amount": {"total": payment.amount_cents, "refund": refund.amount_cents if amount_cents is None else amount_cents,
                       "payer_total": payment.amount_cents, "payer_refund": refund.amount_cents}}
