"""Text no handler should see is refused before any handler runs, the same way on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from siyu.merchants.models import Store
from tests.factories.merchants import auth_headers, make_merchant, make_staff


def test_nul_in_json_body_is_refused_and_nothing_is_written(db, client):
    # given
    headers = auth_headers(db, make_staff(db, merchant=make_merchant(db)))
    # when
    r = client.post("/api/v1/admin/stores", json={"name": "门店\x00一"}, headers=headers)
    # then
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_characters"
    assert db.scalar(select(func.count(Store.id))) == 0


def test_nul_in_query_and_form_is_refused(db, client):
    headers = auth_headers(db, make_staff(db, merchant=make_merchant(db)))
    r = client.get("/api/v1/admin/customers?q=a%00b", headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_characters")
    r = client.post("/console/login", data={"username": "a\x00", "password": "x"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_characters")


def test_refusal_is_translated(db, client):
    r = client.get("/healthz?x=%00", headers={"Accept-Language": "zh-CN"})
    assert r.json()["error"]["message"] == "文本中不能包含 NUL 字符。"


def test_oversized_json_body_is_413(db, client):
    headers = auth_headers(db, make_staff(db, merchant=make_merchant(db)))
    r = client.post("/api/v1/admin/stores", content=b'{"name": "' + b"x" * (3 * 1024 * 1024) + b'"}',
                    headers={**headers, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
    assert db.scalar(select(func.count(Store.id))) == 0


def test_unreadable_form_body_is_a_clear_400(db, client):
    r = client.post("/console/login", content=b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n",
                    headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"
