"""Local stand-ins for outside HTTP services (WeChat), on 127.0.0.1 in a thread."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any


class JsonServer:
    """Answers every GET with `answer(path, query_params)` as JSON; records the requests."""

    def __init__(self, answer: Callable[[str, dict[str, list[str]]], dict[str, Any]]) -> None:
        self.requests: list[dict[str, list[str]]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlparse(self.path)
                params = urllib.parse.parse_qs(url.query)
                fake.requests.append({"path": [url.path], **params})
                body = json.dumps(answer(url.path, params)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


INVALID_CODE = {"errcode": 40029, "errmsg": "invalid code"}
