"""Paying withdrawals out: the provider interface, the sandbox, and WeChat Pay's transfer to a
user's change (商家转账到零钱, API v3, through the configurable `wechatpay_api_base`).

WeChat Pay requests are signed, and their answers checked against the platform key, by the payments
domain (`payments.service.wechatpay_request`), with the merchant's WeChat Pay settings."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from siyu.payments import service as payments

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclasses.dataclass(frozen=True)
class PayoutRequest:
    withdrawal_id: int
    amount_cents: int
    merchant: Any  # siyu.merchants.models.Merchant
    openid: str | None
    remark: str = "佣金提现"

    @property
    def out_batch_no(self) -> str:
        return f"SYWD{self.merchant.id}X{self.withdrawal_id}"

    @property
    def out_detail_no(self) -> str:
        return f"SYWD{self.merchant.id}D{self.withdrawal_id}"


@dataclasses.dataclass(frozen=True)
class PayoutResult:
    status: str  # paid | paying | failed
    provider_ref: str = ""
    error: str = ""


class PayoutProvider(Protocol):
    name: str

    def pay(self, request: PayoutRequest) -> PayoutResult:
        """Start (or safely repeat) the payout of one withdrawal."""

    def query(self, request: PayoutRequest) -> PayoutResult:
        """Where a payout that answered `paying` stands now."""


class SandboxPayouts:
    """Pays at once; for trying the programme out and for tests."""

    name = "sandbox"

    def pay(self, request: PayoutRequest) -> PayoutResult:
        return PayoutResult(status="paid", provider_ref=f"SANDBOX-{request.out_batch_no}")

    def query(self, request: PayoutRequest) -> PayoutResult:
        return self.pay(request)


class WechatPayTransfers:
    name = "wechatpay"

    def _request(self, merchant: Any, method: str, path: str, payload: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        return payments.wechatpay_request(merchant, method, path, payload, platform_serial=True)

    def pay(self, request: PayoutRequest) -> PayoutResult:
        if not request.openid:
            return PayoutResult(status="failed", error="no WeChat openid for this distributor")
        try:
            cfg = payments.wechatpay_config(request.merchant)
        except payments.WechatPayNotConfigured:
            return PayoutResult(status="failed", error="WeChat Pay is not configured")
        payload = {
            "appid": cfg.appid, "out_batch_no": request.out_batch_no, "batch_name": request.remark,
            "batch_remark": request.remark, "total_amount": request.amount_cents, "total_num": 1,
            "transfer_detail_list": [{"out_detail_no": request.out_detail_no, "transfer_amount": request.amount_cents,
                                      "transfer_remark": request.remark, "openid": request.openid}],
        }
        try:
            status, data = self._request(request.merchant, "POST", "/v3/transfer/batches", payload)
        except (httpx.HTTPError, payments.WechatPayAnswerRejected) as exc:
            # Unknown whether WeChat Pay has it: stay paying; the query (and a repeat with the same
            # out_batch_no, which WeChat Pay treats as the same batch) settles it.
            log.warning("wechatpay transfer %s: %r", request.out_batch_no, exc)
            return PayoutResult(status="paying", error="provider unavailable")
        if status == 200:
            return PayoutResult(status="paying", provider_ref=str(data.get("batch_id") or "")[:64])
        if status >= 500 or status == 429:
            return PayoutResult(status="paying", error=f"HTTP {status}")
        return PayoutResult(status="failed", error=f"{data.get('code', status)}: {data.get('message', '')}"[:200])

    def query(self, request: PayoutRequest) -> PayoutResult:
        path = (f"/v3/transfer/batches/out-batch-no/{quote(request.out_batch_no)}"
                f"/details/out-detail-no/{quote(request.out_detail_no)}")
        try:
            status, data = self._request(request.merchant, "GET", path, None)
        except (httpx.HTTPError, payments.WechatPayAnswerRejected):
            return PayoutResult(status="paying", error="provider unavailable")
        if status == 404:
            # The batch never arrived: send it again (same numbers, so never twice).
            return self.pay(request)
        if status != 200:
            return PayoutResult(status="paying", error=f"HTTP {status}")
        state = data.get("detail_status")
        ref = str(data.get("detail_id") or "")[:64]
        if state == "SUCCESS":
            return PayoutResult(status="paid", provider_ref=ref)
        if state == "FAIL":
            return PayoutResult(status="failed", provider_ref=ref, error=str(data.get("fail_reason") or "FAIL")[:200])
        return PayoutResult(status="paying", provider_ref=ref)


_providers: dict[str, PayoutProvider] = {}


def register(provider: PayoutProvider) -> PayoutProvider:
    _providers[provider.name] = provider
    return provider


def get(name: str) -> PayoutProvider | None:
    return _providers.get(name)


register(SandboxPayouts())
register(WechatPayTransfers())
