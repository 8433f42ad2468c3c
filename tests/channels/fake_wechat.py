"""A local fake of the official account's server API: /cgi-bin/token and /cgi-bin/qrcode/create."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from typing import Any


class FakeOaApi:
    def __init__(self, *, appid: str, secret: str) -> None:
        self.appid, self.secret = appid, secret
        self.requests: list[dict[str, Any]] = []
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        # openid -> unionid answered by /cgi-bin/user/info
        self.unionids: dict[str, str] = {}
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(self, answer: dict[str, Any]) -> None:
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlparse(self.path)
                params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                fake.requests.append({"method": "GET", "path": url.path, "params": params})
                if url.path == "/cgi-bin/user/info":
                    if params.get("access_token") not in fake.valid_tokens:
                        return self._send({"errcode": 40001, "errmsg": "invalid credential"})
                    info = {"subscribe": 1, "openid": params.get("openid", "")}
                    if params.get("openid") in fake.unionids:
                        info["unionid"] = fake.unionids[params["openid"]]
                    return self._send(info)
                if url.path != "/cgi-bin/token":
                    return self._send({"errcode": 404, "errmsg": "not found"})
                if params.get("appid") != fake.appid or params.get("secret") != fake.secret:
                    return self._send({"errcode": 40125, "errmsg": "invalid appsecret"})
                fake.tokens_issued += 1
                token = f"TOKEN{fake.tokens_issued}"
                fake.valid_tokens.add(token)
                self._send({"access_token": token, "expires_in": 7200})

            def do_POST(self) -> None:  # noqa: N802
                url = urllib.parse.urlparse(self.path)
                params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append({"method": "POST", "path": url.path, "params": params, "json": body})
                if url.path != "/cgi-bin/qrcode/create":
                    return self._send({"errcode": 404, "errmsg": "not found"})
                if params.get("access_token") not in fake.valid_tokens:
                    return self._send({"errcode": 40001, "errmsg": "invalid credential"})
                if body.get("action_name") != "QR_LIMIT_STR_SCENE":
                    return self._send({"errcode": 40097, "errmsg": "invalid args"})
                scene = body["action_info"]["scene"]["scene_str"]
                self._send({"ticket": f"TICKET-{scene}", "url": f"http://weixin.qq.com/q/{scene}"})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def qr_creations(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/cgi-bin/qrcode/create"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
