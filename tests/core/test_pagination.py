from __future__ import annotations

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.app import LocaleMiddleware, _install_error_handlers
from siyu.core.errors import BadRequest
from siyu.core.models import AuditLog
from siyu.core.pagination import MAX_LIMIT, decode_cursor, encode_cursor, paginate
from siyu.core.web import DbSession

MERCHANT = 7_000_001


def _audit_rows(session, n: int) -> list[int]:
    rows = [AuditLog(merchant_id=MERCHANT, actor_type="system", action=f"test.{i}") for i in range(n)]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


def _page_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(LocaleMiddleware)
    _install_error_handlers(app)

    @app.get("/api/v1/test/audit")
    def audit(session: DbSession, cursor: str | None = Query(None, max_length=200), limit: int | None = None) -> dict:
        stmt = select(AuditLog).where(AuditLog.merchant_id == MERCHANT)
        page = paginate(session, stmt, AuditLog.id, cursor=cursor, limit=limit)
        return {"items": [r.id for r in page.items], "next_cursor": page.next_cursor}

    return app


@pytest.mark.parametrize("last_id", [1, 42, 2**53, 2**62])
def test_cursor_round_trip(last_id):
    assert decode_cursor(encode_cursor(last_id)) == last_id


@pytest.mark.parametrize("cursor", [None, ""])
def test_no_cursor_is_the_first_page(cursor):
    assert decode_cursor(cursor) is None


@pytest.mark.parametrize("cursor", ["garbage!", "aWQ6", "eDox", "aWQ6LTE", "aWQ6MA", encode_cursor(1)[:-1] + "€", "aWQ6YWJj"])
def test_bad_cursors_are_invalid_cursor(cursor):
    with pytest.raises(BadRequest) as caught:
        decode_cursor(cursor)
    assert caught.value.code == "invalid_cursor"


def test_pages_walk_newest_first_without_gaps_or_repeats(db):
    ids = _audit_rows(db, 5)
    stmt = select(AuditLog).where(AuditLog.merchant_id == MERCHANT)
    first = paginate(db, stmt, AuditLog.id, cursor=None, limit=2)
    second = paginate(db, stmt, AuditLog.id, cursor=first.next_cursor, limit=2)
    third = paginate(db, stmt, AuditLog.id, cursor=second.next_cursor, limit=2)
    assert [r.id for r in first.items] == ids[::-1][:2]
    assert [r.id for r in second.items] == ids[::-1][2:4]
    assert [r.id for r in third.items] == ids[::-1][4:]
    assert third.next_cursor is None


def test_limit_is_clamped(db):
    _audit_rows(db, MAX_LIMIT + 3)
    stmt = select(AuditLog).where(AuditLog.merchant_id == MERCHANT)
    assert len(paginate(db, stmt, AuditLog.id, cursor=None, limit=10_000).items) == MAX_LIMIT
    assert len(paginate(db, stmt, AuditLog.id, cursor=None, limit=0).items) == 20  # the default
    assert len(paginate(db, stmt, AuditLog.id, cursor=None, limit=-5).items) == 1


def test_api_route_pages_through_and_answers_400_for_a_bad_cursor(db):
    ids = _audit_rows(db, 3)
    with TestClient(_page_app(), raise_server_exceptions=False) as client:
        r = client.get("/api/v1/test/audit", params={"limit": 2})
        assert r.status_code == 200
        assert r.json()["items"] == ids[::-1][:2]
        r = client.get("/api/v1/test/audit", params={"limit": 2, "cursor": r.json()["next_cursor"]})
        assert r.json() == {"items": [ids[0]], "next_cursor": None}

        r = client.get("/api/v1/test/audit", params={"cursor": "not-a-cursor"}, headers={"Accept-Language": "en"})
        assert r.status_code == 400
        assert r.json() == {"error": {"code": "invalid_cursor", "message": "The cursor is not valid.", "details": {}}}
