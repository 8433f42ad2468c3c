"""The admission gate: a server process works on at most `max_inflight` requests at once; the rest wait
in the event loop and are all answered."""

from __future__ import annotations

import asyncio

import pytest

import siyu.app as app_module
from siyu.app import AdmissionMiddleware
from siyu.config import Settings


def _run_requests(gate: AdmissionMiddleware, n: int) -> list[int]:
    """Send `n` requests at once through `gate`; returns the numbers inside together, as each entered."""
    inside, seen = 0, []

    async def app(scope, receive, send):
        nonlocal inside
        inside += 1
        seen.append(inside)
        await asyncio.sleep(0.01)
        inside -= 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gate.app = app
    sent = []

    async def one():
        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            sent.append(message)

        await gate({"type": "http", "path": "/x", "method": "GET", "headers": []}, receive, send)

    async def main():
        await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(main())
    assert sum(1 for m in sent if m["type"] == "http.response.start") == n
    return seen


@pytest.mark.parametrize(("limit", "expected"), [(2, 2), (3, 3), (0, 12)])
def test_at_most_max_inflight_requests_are_inside_at_once(db, monkeypatch, limit, expected):
    # given a pool larger than the requests (0: the pool's size, here more than the 12 requests)
    monkeypatch.setattr(app_module, "get_settings", lambda: Settings(max_inflight=limit))
    gate = AdmissionMiddleware(None)
    monkeypatch.setattr(gate, "_pool_size", lambda engine: 30)
    # when twelve requests arrive together
    seen = _run_requests(gate, 12)
    # then every one is answered, never more than the limit inside together
    assert max(seen) == expected
