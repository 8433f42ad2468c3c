"""The included routers' path gates (`siyu.app._PrefixGate`) pass over routers that cannot match a path
and change nothing else: every route's path (and variants of it) resolves to the same route, fully or
partly, with the gates as without them."""

from __future__ import annotations

import re

from fastapi.routing import _IncludedRouter
from starlette.routing import Match

from siyu.app import _PrefixGate, create_app


def _scope(method: str, path: str) -> dict:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}


def test_the_gates_resolve_every_path_as_the_routers_do() -> None:
    app = create_app(configure_database=False)
    included = [r for r in app.router.routes if isinstance(r, _IncludedRouter)]
    assert included and all(isinstance(r.__dict__.get("matches"), _PrefixGate) for r in included)
    paths = {"/", "/api/v1", "/api/v1/shop", "/console", "/nowhere/at/all", "/api/v1/shop/x/orders/1/pay/"}
    for router in included:
        for context in router.effective_route_contexts():
            path = context.path or getattr(context.starlette_route, "path", "")
            paths |= {re.sub(r"\{[^}]*\}", "7", path), re.sub(r"\{[^}]*\}", "ab", path) + "/",
                      re.sub(r"\{[^}]*\}", "a/b", path), path.rsplit("/", 1)[0]}
    cases = [(method, path) for path in sorted(paths) for method in ("GET", "POST")]

    def resolve(method: str, path: str) -> list[tuple[int, Match]]:
        found = []
        for route in app.router.routes:
            match, _scope_ = route.matches(_scope(method, path))
            if match != Match.NONE:
                found.append((id(route), match))
        return found

    gated = [resolve(m, p) for m, p in cases]
    assert any(gated)
    for router in included:
        del router.__dict__["matches"]
    assert gated == [resolve(m, p) for m, p in cases]


def test_a_shop_request_asks_only_the_routers_that_have_its_shape() -> None:
    app = create_app(configure_database=False)
    asked = []
    for route in app.router.routes:
        gate = route.__dict__.get("matches")
        if isinstance(gate, _PrefixGate):
            inner = gate.matches

            def spy(scope: dict, inner=inner, route=route) -> tuple:  # noqa: ANN001
                asked.append(route)
                return inner(scope)

            gate.matches = spy
    for route in app.router.routes:
        match, _ = route.matches(_scope("POST", "/api/v1/shop/demo/orders"))
        if match == Match.FULL:
            break
    assert match == Match.FULL
    assert 1 <= len(asked) <= 3
