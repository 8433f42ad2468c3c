"""A local fake of the WeChat Pay API v3 (http.server in a thread on 127.0.0.1).

It checks our Authorization header with the merchant's public key exactly as WeChat Pay does,
answers prepay, close and refund requests, and signs its answers with the platform key.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.factories.payments import WechatKeys, platform_sign

AUTH_RE = re.compile(r'^WECHATPAY2-SHA256-RSA2048 (.+)$')


def parse_authorization(header: str) -> dict[str, str]:
    match = AUTH_RE.match(header or "")
    if not match:
        return {}
    return dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))


class FakeWechatPay:
    def __init__(self, keys: WechatKeys) -> None:
        self.keys = keys
        self.requests: list[dict[str, Any]] = []
        # What the refund endpoint answers: "SUCCESS", "PROCESSING", or an HTTP error code.
        self.refund_status: str | int = "SUCCESS"
        self.sign_answers = True
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeWechatPay:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer = fake.handle("POST", self.path, dict(self.headers), body)
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                    if fake.sign_answers:
                        ts, nonce = str(int(time.time())), secrets.token_hex(8)
                        self.send_header("Wechatpay-Timestamp", ts)
                        self.send_header("Wechatpay-Nonce", nonce)
                        self.send_header("Wechatpay-Serial", fake.keys.platform_serial)
                        self.send_header("Wechatpay-Signature", platform_sign(fake.keys.platform_key, ts, nonce, data))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # ------------------------------------------------------------ the API

    def verify(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        auth = parse_authorization(next((v for k, v in headers.items() if k.lower() == "authorization"), ""))
        if not auth:
            return "no authorization"
        if auth.get("mchid") != self.keys.mchid or auth.get("serial_no") != self.keys.serial_no:
            return "wrong mchid or serial"
        message = f"{method}\n{path}\n{auth.get('timestamp')}\n{auth.get('nonce_str')}\n".encode() + body + b"\n"
        try:
            self.keys.merchant_key.public_key().verify(base64.b64decode(auth.get("signature", "")), message,
                                                       padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "bad signature"
        return None

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        error = self.verify(method, path, headers, body)
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = None
        self.requests.append({"method": method, "path": path, "body": data, "auth_error": error})
        if error:
            return 401, {"code": "SIGN_ERROR", "message": error}
        if data is None:
            return 400, {"code": "PARAM_ERROR", "message": "body is not JSON"}
        if path in ("/v3/pay/transactions/jsapi", "/v3/pay/transactions/h5"):
            if data.get("mchid") != self.keys.mchid or data.get("appid") != self.keys.appid:
                return 400, {"code": "PARAM_ERROR", "message": "mchid/appid"}
            if path.endswith("jsapi"):
                if not (data.get("payer") or {}).get("openid"):
                    return 400, {"code": "PARAM_ERROR", "message": "payer.openid required"}
                return 200, {"prepay_id": f"wx{data['out_trade_no']}"}
            return 200, {"h5_url": f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx{data['out_trade_no']}"}
        if path.startswith("/v3/pay/transactions/out-trade-no/") and path.endswith("/close"):
            return 204, None
        if path == "/v3/refund/domestic/refunds":
            if isinstance(self.refund_status, int):
                return self.refund_status, {"code": "NOT_ENOUGH", "message": "基本账户余额不足"}
            return 200, {"refund_id": f"50000{data['out_refund_no']}", "out_refund_no": data["out_refund_no"],
                         "out_trade_no": data["out_trade_no"], "status": self.refund_status,
                         "amount": data["amount"]}
        return 404, {"code": "NOT_FOUND", "message": path}
