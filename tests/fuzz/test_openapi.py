"""Schemathesis against our own OpenAPI: every route, valid and invalid input, on a seeded demo.

What is checked on every answer:
- `not_a_server_error`: no 5xx, whatever the input;
- every 4xx is JSON in our error shape `{"error": {"code", "message", "details"}}`; the payment
  webhooks (`/webhooks/pay/{provider}/{m}`) answer in WeChat Pay's shape `{"code": "FAIL", "message"}`
  instead, because the provider reads that.

How: the schema is the app's own OpenAPI (in-process), and every case is sent through schemathesis'
ASGI transport to `create_app(database=...)` bound to a committed database holding a small demo
(`seed_demo(scale=0.02)`, in `tests.conftest.committed`), so ids exist; the fuzz customer also gets an
address, a cart line, a paid and a pending order. Admin routes carry a brand admin's bearer token
(`admin` / `siyu-demo`), shop routes a customer's (dev-login) and always use the demo's slug.
Path ids are half the time taken from rows that exist (so the cases reach the code behind the 404),
half the time generated. Runs on SQLite, and on PostgreSQL when SIYU_TEST_PG_URL is set.

Bounded and deterministic: `max_examples` per operation plus schemathesis' coverage phase
(boundary values, wrong types, missing fields), derandomized, no example database, no shrinking.

Exclusions (each for a reason, nothing else is left out):
- none of the operations in the schema is excluded. The two multipart uploads
  (POST /api/v1/admin/products/import, POST /api/v1/admin/media) are fuzzed too: schemathesis
  generates multipart bodies, including wrong ones.
- routes outside the schema (`include_in_schema=False`: console and H5 pages, /s/{code},
  /lang/{locale}, the bench routes, the static mounts) are not reachable from the OpenAPI and so are
  not fuzzed here; their forms have their own tests.
- the webhook's body is read raw (signatures cover the exact bytes) so the schema declares none and
  schemathesis only fuzzes its path; `test_payment_webhook_bodies` below covers bodies and headers
  with correctly signed sandbox notifications carrying arbitrary values.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from sqlalchemy import select, update

from siyu.app import create_app
from siyu.db import Base, Database, import_all_models
from tests.conftest import BACKENDS, committed
from tests.fakes import INVALID_CODE, JsonServer

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "siyu-demo"
SHOP = "demo"
FUZZ_OPENID = "fuzz-customer-openid"
# CI runs 15 per operation (the suite must stay well under 20 minutes); a deeper local run:
# SIYU_FUZZ_MAX_EXAMPLES=300.
MAX_EXAMPLES = int(os.environ.get("SIYU_FUZZ_MAX_EXAMPLES", "15"))
# Set to a file path to log every case (operation, status, answer, input) for a look at coverage.
CASE_LOG = os.environ.get("SIYU_FUZZ_LOG")

# Orders is being reworked by another helper; operations listed here are marked xfail (non-strict)
# until the failures reported for them are fixed. Keys are "METHOD /path".
# (POST /api/v1/admin/orders/bulk-ship 500ed on a bare "\r" in the CSV while the suite was written; the
# generator does not reliably produce that input, so it is pinned in test_orders_findings.py instead.)
ORDERS_XFAIL: dict[str, str] = {}

import_all_models()
_schema_app = create_app(configure_database=False)
schema = schemathesis.openapi.from_dict(_schema_app.openapi())

# Path parameter -> (table, whether the shop customer's own rows are the meaningful ones).
ID_TABLES: dict[str, tuple[str, bool]] = {
    "token_id": ("staff_tokens", False),
    "store_id": ("stores", False),
    "staff_id": ("staff", False),
    "product_id": ("catalog_products", False),
    "sku_id": ("catalog_skus", False),
    "category_id": ("catalog_categories", False),
    "customer_id": ("customers", False),
    "tag_id": ("customer_tag_defs", False),
    "payment_id": ("payments", True),
    "order_id": ("orders", True),
    "refund_id": ("refund_requests", True),
    "line_id": ("cart_lines", True),
    "address_id": ("customer_addresses", True),
}


@dataclass
class FuzzEnv:
    backend: str
    database: Database
    app: Any
    merchant_id: int
    admin_id: int
    admin_password_hash: str
    setup_notes: list[str] = field(default_factory=list)


def _post(client, path: str, body: dict, token: str | None = None, **headers: str):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(path, json=body, headers=headers)


def _prepare_orders(client, admin_token: str, customer_token: str, notes: list[str]) -> None:
    """Best effort: give the fuzz customer an address, a cart line, a paid and a pending order, so
    that the shop's order, payment and refund routes have own rows to hit."""
    products = client.get(f"/api/v1/shop/{SHOP}/products?limit=5").json().get("items", [])
    sku_ids = [s["id"] for p in products for s in p.get("skus", []) if s.get("stock", 0) > 5][:2]
    if not sku_ids:
        products = client.get("/api/v1/admin/products?limit=20", headers={"Authorization": f"Bearer {admin_token}"})
        sku_ids = [s["id"] for p in products.json().get("items", []) for s in p.get("skus", [])][:2]
    address = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市",
               "district": "徐汇区", "detail": "漕溪北路 1 号"}
    steps = [("address", f"/api/v1/shop/{SHOP}/addresses", address)]
    if sku_ids:
        steps.append(("cart line", f"/api/v1/shop/{SHOP}/cart/lines", {"sku_id": sku_ids[0], "quantity": 1}))
    for label, path, body in steps:
        r = _post(client, path, body, customer_token)
        if r.status_code >= 300:
            notes.append(f"{label}: {r.status_code} {r.text[:200]}")
    for n, sku_id in enumerate(sku_ids * 2):
        order = _post(client, f"/api/v1/shop/{SHOP}/orders",
                      {"items": [{"sku_id": sku_id, "quantity": 1}], "fulfilment": {"type": "delivery", "address": address}},
                      customer_token, **{"Idempotency-Key": f"fuzz-setup-{n}"})
        if order.status_code >= 300:
            notes.append(f"order: {order.status_code} {order.text[:200]}")
            continue
        if n % 2:
            continue  # leave this one pending
        pay = _post(client, f"/api/v1/shop/{SHOP}/orders/{order.json()['id']}/pay", {"method": "sandbox"}, customer_token)
        if pay.status_code >= 300:
            notes.append(f"pay: {pay.status_code} {pay.text[:200]}")
            continue
        confirm = _post(client, f"/api/v1/shop/{SHOP}/payments/{pay.json()['payment_id']}/sandbox-confirm", {},
                        customer_token)
        if confirm.status_code >= 300:
            notes.append(f"sandbox confirm: {confirm.status_code} {confirm.text[:200]}")


def _code2session(_path: str, params: dict[str, list[str]]) -> dict[str, Any]:
    """Codes starting with "0" are refused (errcode 40029); any other code signs in as an openid derived
    from it. Without this fake the WeChat login would answer 503 (unreachable)."""
    code = params.get("js_code", [""])[0]
    if not code or code.startswith("0"):
        return INVALID_CODE
    return {"openid": "wx-" + hashlib.sha256(code.encode()).hexdigest()[:24], "session_key": "k"}


@pytest.fixture(scope="module")
def fake_wechat() -> Iterator[JsonServer]:
    from siyu.config import get_settings

    fake = JsonServer(_code2session)
    settings = get_settings()
    original = settings.wechat_api_base
    settings.wechat_api_base = fake.url
    yield fake
    settings.wechat_api_base = original
    fake.close()


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_env(request: pytest.FixtureRequest, fake_wechat: JsonServer) -> FuzzEnv:
    from fastapi.testclient import TestClient

    from siyu.demo import seed_demo
    from siyu.merchants.models import Staff

    with committed(request.param, "fuzz") as database:
        ctx = seed_demo(database, scale=0.02)
        with database.scope() as session:
            admin = session.scalars(select(Staff).where(Staff.username == ADMIN_USERNAME)).one()
            admin_id, admin_hash = admin.id, admin.password_hash
        app = create_app(database=database)
        env = FuzzEnv(request.param, database, app, ctx.merchant_id, admin_id, admin_hash)
        with TestClient(app, raise_server_exceptions=False) as client:
            admin_token = _login_admin(client)
            customer_token = _login_customer(client)
            _prepare_orders(client, admin_token, customer_token, env.setup_notes)
        # Not fatal (every other route is still worth fuzzing), but said: without these rows the shop's
        # order, payment and refund routes mostly answer 404.
        if env.setup_notes:
            warnings.warn(f"fuzz setup could not prepare orders: {env.setup_notes}", stacklevel=1)
        yield env


def _login_admin(client) -> str:
    r = _post(client, "/api/v1/admin/auth/token", {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _login_customer(client) -> str:
    r = _post(client, f"/api/v1/shop/{SHOP}/auth/dev-login", {"openid": FUZZ_OPENID, "nickname": "fuzz"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@dataclass
class Tokens:
    """The admin's and the customer's bearer tokens. A fuzzed case may end them (a new password for
    the admin through PATCH /staff/{id}, a revoked token): `refresh()` puts the admin back and
    signs both in again, so the following cases are not all 401s."""

    env: FuzzEnv
    admin: str = ""
    customer: str = ""
    customer_id: int = 0

    def refresh(self) -> None:
        from fastapi.testclient import TestClient

        from siyu.merchants.models import Staff

        with self.env.database.scope() as session:
            session.execute(update(Staff).where(Staff.id == self.env.admin_id)
                            .values(password_hash=self.env.admin_password_hash, active=True, disabled_at=None))
        with TestClient(self.env.app, raise_server_exceptions=False) as client:
            self.admin = _login_admin(client)
            # WeChat login configured (a fuzzed PATCH may have cleared it), so that POST /auth/wechat
            # reaches code2session (the fake).
            r = client.patch("/api/v1/admin/merchant/settings", headers={"Authorization": f"Bearer {self.admin}"},
                             json={"wechat_miniprogram_appid": "wxfuzz0000000000",
                                   "wechat_miniprogram_secret": "fuzzsecret"})
            assert r.status_code == 200, r.text
            r = _post(client, f"/api/v1/shop/{SHOP}/auth/dev-login", {"openid": FUZZ_OPENID})
            assert r.status_code == 200, r.text
            self.customer, self.customer_id = r.json()["access_token"], r.json()["customer"]["id"]


@pytest.fixture
def tokens(fuzz_env: FuzzEnv) -> Tokens:
    tokens = Tokens(fuzz_env)
    tokens.refresh()
    return tokens


def _existing_ids(fuzz_env: FuzzEnv, param: str, customer_id: int | None) -> list[int]:
    table_name, own = ID_TABLES[param]
    table = Base.metadata.tables[table_name]
    stmt = select(table.c.id).where(table.c.merchant_id == fuzz_env.merchant_id)
    if own and customer_id is not None and "customer_id" in table.c:
        stmt = stmt.where(table.c.customer_id == customer_id)
    with fuzz_env.database.scope() as session:
        ids = list(session.scalars(stmt.order_by(table.c.id).limit(10)))
        ids += list(session.scalars(stmt.order_by(table.c.id.desc()).limit(10)))
    return sorted(set(ids))


def _is_our_error(body: Any) -> bool:
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return False
    err = body["error"]
    return (isinstance(err.get("code"), str) and bool(err["code"]) and isinstance(err.get("message"), str)
            and isinstance(err.get("details"), dict))


def _is_wechat_error(body: Any) -> bool:
    return isinstance(body, dict) and body.get("code") == "FAIL" and isinstance(body.get("message"), str)


def check_error_shape(case: schemathesis.Case, response: Any) -> None:
    if not 400 <= response.status_code < 500:
        return
    try:
        body = json.loads(response.text)
    except ValueError:
        body = None
    if case.operation.path.startswith("/webhooks/pay/"):
        # The handler answers in WeChat Pay's shape; what is refused before it runs (a path parameter
        # failing validation, an unknown shop) answers in ours like every other route.
        shape_ok = _is_wechat_error(body) or _is_our_error(body)
    else:
        shape_ok = _is_our_error(body)
    assert shape_ok, (
        f"{case.operation.method.upper()} {case.operation.path} answered {response.status_code} "
        f"not in the error shape: {response.text[:500]!r}\nReproduce with:\n{case.as_curl_command()}"
    )


@pytest.fixture(autouse=True)
def _xfail_orders(request: pytest.FixtureRequest) -> None:
    case_label = getattr(request.node, "originalname", "")
    label = request.node.name
    for key, reason in ORDERS_XFAIL.items():
        if key in label or key in case_label:
            request.node.add_marker(pytest.mark.xfail(strict=False, reason=reason))


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api(case: schemathesis.Case, fuzz_env: FuzzEnv, tokens: Tokens) -> None:
    path = case.operation.path
    headers: dict[str, str] = {}
    customer_id: int | None = None
    if path.startswith("/api/v1/admin/") and path != "/api/v1/admin/auth/token":
        headers["Authorization"] = f"Bearer {tokens.admin}"
    elif path.startswith("/api/v1/shop/"):
        customer_id = tokens.customer_id
        if not path.endswith("/auth/dev-login") and not path.endswith("/auth/wechat"):
            headers["Authorization"] = f"Bearer {tokens.customer}"
    if case.path_parameters is not None:
        if "m" in case.path_parameters:
            case.path_parameters["m"] = SHOP
        # Half of the cases hit rows that exist: chosen from the generated values themselves, so the
        # choice is as deterministic as the generation (no extra strategy: it would turn off
        # schemathesis' coverage phase).
        seed = int(hashlib.sha256(repr(sorted(case.path_parameters.items())).encode()).hexdigest(), 16)
        if seed % 2 == 0:
            pick = seed // 2
            for name in list(case.path_parameters):
                if name in ID_TABLES:
                    ids = _existing_ids(fuzz_env, name, customer_id)
                    if ids:
                        case.path_parameters[name] = ids[pick % len(ids)]
    response = case.call(app=fuzz_env.app, headers=headers)
    case.validate_response(response, checks=[not_a_server_error], headers=headers)
    check_error_shape(case, response)
    if response.status_code == 401 and "Authorization" in headers:
        tokens.refresh()
    if CASE_LOG:
        with open(CASE_LOG, "a", encoding="utf-8") as f:
            f.write(f"{fuzz_env.backend}\t{case.operation.method.upper()} {path}\t{response.status_code}\t{response.text[:150]!r}\t{case.path_parameters!r} {case.query!r} {str(case.body)[:200]!r}\n")


# ---------------------------------------------------------------- the payment webhook's body
# The schema declares no body for POST /webhooks/pay/{provider}/{m} (it is read raw), so schemathesis
# cannot reach past the signature check. Here the sandbox provider's notifications are generated,
# correctly signed with the demo's sandbox key, with arbitrary values in every field, and sent to it.

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                              max_size=3), max_leaves=6)
_amount_value = st.integers() | st.sampled_from([0, 1, -1, 2**31, 2**63, 10**30]) | _json_leaf


# Timestamps at the edges: the epoch, the last second Python's datetime holds, one past it, the largest
# 12-digit value, non-ASCII digits (str.isdigit() admits them, int() does not).
TIMESTAMP_EDGES = ["0", "253402300799", "253402300800", "999999999999", "\u00b2", "-1", "1e9", " 1", ""]


def _edge_timestamp_examples(test: Any) -> Any:
    payload = {"event_type": "TRANSACTION.SUCCESS", "out_trade_no": "SY0", "amount": {"total": 1}}
    for ts in TIMESTAMP_EDGES:
        test = hypothesis.example(payload=payload, raw=False, timestamp=ts)(test)
    return test


@st.composite
def _notification(draw: st.DrawFn, out_trade_nos: list[str], amounts: list[int]) -> dict[str, Any]:
    event = draw(st.sampled_from(["TRANSACTION.SUCCESS", "REFUND.SUCCESS"]) | st.text(max_size=50))
    fields: dict[str, Any] = {
        "id": draw(st.text(max_size=80) | _json_leaf),
        "event_type": event,
        "out_trade_no": draw(st.sampled_from(out_trade_nos) | _json_leaf) if out_trade_nos else draw(_json_leaf),
        "transaction_id": draw(_json_leaf),
        "trade_state": draw(st.just("SUCCESS") | _json_leaf),
        "amount": draw(st.fixed_dictionaries({}, optional={"total": st.sampled_from(amounts or [1]) | _amount_value,
                                                           "refund": st.sampled_from(amounts or [1]) | _amount_value,
                                                           "currency": _json_leaf}) | _json),
        "out_refund_no": draw(_json_leaf),
        "refund_id": draw(_json_leaf),
    }
    keep = draw(st.sets(st.sampled_from(sorted(fields))))
    return {k: v for k, v in fields.items() if k in keep or k in ("event_type", "out_trade_no", "amount")}


def test_payment_webhook_bodies(fuzz_env: FuzzEnv, tokens: Tokens) -> None:
    from fastapi.testclient import TestClient

    from siyu.core import clock
    from siyu.payments.models import Payment
    from siyu.payments.providers.sandbox import sign

    with TestClient(fuzz_env.app, raise_server_exceptions=False) as client:
        # one payment left open, so that generated notifications can claim it
        orders = client.get(f"/api/v1/shop/{SHOP}/orders?status=pending_payment",
                            headers={"Authorization": f"Bearer {tokens.customer}"}).json().get("items", [])
        for order in orders[:1]:
            _post(client, f"/api/v1/shop/{SHOP}/orders/{order['id']}/pay", {"method": "sandbox"}, tokens.customer)
        with fuzz_env.database.scope() as session:
            payments = {p.out_trade_no: (p.id, p.amount_cents) for p in session.scalars(
                select(Payment).where(Payment.merchant_id == fuzz_env.merchant_id))}

        @hypothesis.settings(max_examples=MAX_EXAMPLES * 4, derandomize=True, database=None, deadline=None,
                             suppress_health_check=list(HealthCheck),
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        @hypothesis.given(payload=_notification(sorted(payments), sorted({a for _, a in payments.values()})), raw=st.booleans() | st.binary(max_size=200),
                          timestamp=st.integers(0, 3).flatmap(lambda n: st.none() if n < 3 else (
                              st.sampled_from(TIMESTAMP_EDGES) | st.integers(0, 10**12 - 1).map(str)
                              | st.text(max_size=14))))
        @_edge_timestamp_examples
        def run(payload: dict[str, Any], raw: bool | bytes, timestamp: str | None) -> None:
            body = raw if isinstance(raw, bytes) else json.dumps(payload).encode()
            # None: now (most cases, so that they get past the freshness check)
            ts = timestamp if timestamp is not None else str(int(clock.now().timestamp()))
            ts_header = ts.encode("utf-8")
            headers = {"Content-Type": "application/json", "Sandbox-Timestamp": ts_header, "Sandbox-Nonce": "fuzz-nonce",
                       "Sandbox-Signature": sign(fuzz_env.merchant_id, ts, "fuzz-nonce", body)}
            claimed = payments.get(payload.get("out_trade_no")) if isinstance(payload.get("out_trade_no"), str) else None
            with fuzz_env.database.scope() as session:
                before = session.get(Payment, claimed[0]).status if claimed else None
            r = client.post(f"/webhooks/pay/sandbox/{SHOP}", content=body, headers=headers)
            if CASE_LOG:
                with open(CASE_LOG, "a", encoding="utf-8") as f:
                    f.write(f"{fuzz_env.backend}\tPOST /webhooks/pay/sandbox (signed)\t{r.status_code}\t{r.text[:150]!r}\n")
            assert r.status_code < 500, r.text
            if r.status_code >= 400:
                assert _is_wechat_error(r.json()), r.text
            else:
                assert r.json() == {"code": "SUCCESS"}, r.text
            if claimed and before == "created":
                with fuzz_env.database.scope() as session:
                    after = session.get(Payment, claimed[0]).status
                total = payload.get("amount", {}).get("total") if isinstance(payload.get("amount"), dict) else None
                if after == "succeeded":
                    # a payment only succeeds on a notification of exactly its amount
                    assert total == claimed[1] and not isinstance(total, bool), (payload, r.text)

        run()
