"""Paying withdrawals out: the sandbox pays at once; a failed payout gives the money back; WeChat Pay's
transfer (against a local fake that checks our v3 signature and signs its answers) pays after a query,
or fails and gives the money back."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.core import clock
from siyu.customers.models import Customer
from siyu.distribution import service
from siyu.distribution.service import payouts
from siyu.ledger.models import LedgerEntry
from siyu.merchants.models import Merchant
from tests.factories.customers import make_customer
from tests.factories.distribution import admin, make_distributor, make_rule, refer, run_events, set_programme
from tests.factories.orders import customer_principal, make_sku, pay, place_order
from tests.factories.payments import configure_wechatpay, platform_sign, wechat_keys
from tests.payments.fake_wechatpay import parse_authorization


class FakeTransfers:
    """POST /v3/transfer/batches and GET …/details/out-detail-no/{no}, as WeChat Pay answers them."""

    def __init__(self) -> None:
        self.keys = wechat_keys()
        self.batches: dict[str, dict[str, Any]] = {}
        self.detail_status = "SUCCESS"
        self.requests: list[tuple[str, str, bool]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def signed(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        auth = parse_authorization(headers.get("Authorization", ""))
        message = f"{method}\n{path}\n{auth.get('timestamp')}\n{auth.get('nonce_str')}\n".encode() + body + b"\n"
        try:
            self.keys.merchant_key.public_key().verify(base64.b64decode(auth.get("signature", "")), message,
                                                       padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return auth.get("mchid") == self.keys.mchid

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _answer(self, status: int, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                ts, nonce = str(int(time.time())), secrets.token_hex(8)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Wechatpay-Timestamp", ts)
                self.send_header("Wechatpay-Nonce", nonce)
                self.send_header("Wechatpay-Serial", fake.keys.platform_serial)
                self.send_header("Wechatpay-Signature", platform_sign(fake.keys.platform_key, ts, nonce, body))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = fake.signed("POST", self.path, dict(self.headers), body)
                fake.requests.append(("POST", self.path, ok))
                if not ok:
                    return self._answer(401, {"code": "SIGN_ERROR", "message": "bad signature"})
                data = json.loads(body)
                fake.batches[data["out_batch_no"]] = data
                self._answer(200, {"out_batch_no": data["out_batch_no"], "batch_id": "1030000071100999991182020050700019480001",
                                   "create_time": "2026-06-01T10:00:00+08:00"})

            def do_GET(self) -> None:  # noqa: N802
                ok = fake.signed("GET", self.path, dict(self.headers), b"")
                fake.requests.append(("GET", self.path, ok))
                batch_no = self.path.split("/out-batch-no/")[1].split("/")[0]
                if batch_no not in fake.batches:
                    return self._answer(404, {"code": "NOT_FOUND", "message": "no such batch"})
                answer = {"detail_id": "1040000071100999991182020050700019500100", "detail_status": fake.detail_status}
                if fake.detail_status == "FAIL":
                    answer["fail_reason"] = "ACCOUNT_FROZEN"
                self._answer(200, answer)

        return Handler


@pytest.fixture(scope="module")
def transfers() -> FakeTransfers:
    fake = FakeTransfers()
    yield fake
    fake.server.shutdown()


def _withdrawable(db: Session, merchant: Merchant):
    """A distributor with ¥10 withdrawable and a ¥6 withdrawal request; returns (distributor, withdrawal)."""
    a = make_distributor(db, merchant=merchant)
    make_rule(db, merchant=merchant, value=1000)
    order = place_order(db, customer=make_customer(db, merchant=merchant),
                        items=[(make_sku(db, merchant=merchant, price_cents=10000), 1)])
    refer(db, order, a)
    pay(db, order)
    run_events(db)
    service.schedule_settlement(db, merchant_id=merchant.id, order_id=order.id, closes_at=clock.now())
    service.settle_due(db, clock.now())
    w = service.request_withdrawal(db, actor=customer_principal(db.get(Customer, a.customer_id)), amount_cents=600)
    return a, w


def _bal(db: Session, merchant: Merchant, d) -> service.accounts.Balances:
    return service.accounts.balances(db, merchant_id=merchant.id, owner_type="distributor", owner_id=d.id)


class Failing:
    name = "failing"

    def pay(self, request: payouts.PayoutRequest) -> payouts.PayoutResult:
        return payouts.PayoutResult(status="failed", error="收款账户异常")

    def query(self, request: payouts.PayoutRequest) -> payouts.PayoutResult:
        return self.pay(request)


def test_a_failed_payout_gives_the_money_back(db: Session, merchant: Merchant) -> None:
    payouts.register(Failing())
    a, w = _withdrawable(db, merchant)
    w.method = "failing"
    db.flush()

    service.approve(db, actor=admin(merchant), withdrawal_id=w.id)

    assert (w.status, w.reason) == ("failed", "收款账户异常")
    b = _bal(db, merchant, a)
    assert (b.settled_cents, b.withdrawing_cents, b.withdrawn_cents) == (1000, 0, 0)
    reasons = [e.reason for e in db.query(LedgerEntry).filter(LedgerEntry.ref_type == "withdrawal",
                                                              LedgerEntry.ref_id == w.id).order_by(LedgerEntry.id)]
    assert reasons == ["withdrawal_requested"] * 2 + ["withdrawal_failed"] * 2


def test_wechatpay_transfer_pays_after_the_query(db: Session, merchant: Merchant, transfers: FakeTransfers,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "wechatpay_api_base", transfers.url)
    configure_wechatpay(db, merchant)
    set_programme(db, merchant=merchant, payout_method="wechatpay")
    transfers.detail_status = "PROCESSING"
    a, w = _withdrawable(db, merchant)

    # when staff approve: WeChat Pay accepts the batch, the money is on its way
    service.approve(db, actor=admin(merchant), withdrawal_id=w.id)
    assert w.status == "paying" and _bal(db, merchant, a).withdrawing_cents == 600
    sent = transfers.batches[f"SYWD{merchant.id}X{w.id}"]
    assert (sent["total_amount"], sent["transfer_detail_list"][0]["openid"]) == (600, _openid(db, a))
    assert all(ok for _, _, ok in transfers.requests)

    # and the jobs tick asks until it is done
    assert service.poll_payouts(db, clock.now()) == 0
    transfers.detail_status = "SUCCESS"
    assert service.poll_payouts(db, clock.now()) == 1
    db.refresh(w)
    assert w.status == "paid"
    b = _bal(db, merchant, a)
    assert (b.settled_cents, b.withdrawing_cents, b.withdrawn_cents) == (400, 0, 600)


def test_wechatpay_transfer_failure_returns_the_money(db: Session, merchant: Merchant, transfers: FakeTransfers,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "wechatpay_api_base", transfers.url)
    configure_wechatpay(db, merchant)
    set_programme(db, merchant=merchant, payout_method="wechatpay")
    transfers.detail_status = "FAIL"
    a, w = _withdrawable(db, merchant)

    service.approve(db, actor=admin(merchant), withdrawal_id=w.id)
    service.poll_payouts(db, clock.now())

    db.refresh(w)
    assert (w.status, w.reason) == ("failed", "ACCOUNT_FROZEN")
    assert _bal(db, merchant, a).settled_cents == 1000


def _openid(db: Session, d) -> str:
    from siyu.customers import service as customers

    return next(i.value for i in customers.identities(db, customer=db.get(Customer, d.customer_id))
                if i.kind == "openid")
