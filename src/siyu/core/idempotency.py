"""`Idempotency-Key` for POSTs that create orders or move money: a replay returns the first answer.

The key row is written in the same transaction as the work, so a failed attempt leaves no key and
may be retried. Two attempts racing with one key: the second waits on the unique index (PostgreSQL)
or on the write lock (SQLite) and then replays the first's answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.errors import Conflict, ValidationFailed
from siyu.core.models import IdempotencyKey
from siyu.db import upsert_insert

MAX_KEY_LENGTH = 200


def request_fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# The two statements of a first attempt, built once (values as parameters): their cache keys and compiled
# forms are computed once, not per request.
_KEYS = IdempotencyKey.__table__
_CLAIM = {
    dialect: upsert_insert(dialect)(_KEYS).on_conflict_do_nothing(index_elements=["merchant_id", "scope", "key"])
    .returning(_KEYS.c.id)
    for dialect in ("postgresql", "sqlite")
}
_ANSWER = (update(_KEYS).where(_KEYS.c.id == bindparam("claimed_id", type_=_KEYS.c.id.type))
           .values(status_code=bindparam("answer_status", type_=_KEYS.c.status_code.type),
                   response=bindparam("answer", type_=_KEYS.c.response.type)))


def run_idempotent(
    session: Session,
    *,
    merchant_id: int,
    scope: str,
    key: str | None,
    payload: Any,
    fn: Callable[[], tuple[int, dict[str, Any]]],
) -> JSONResponse:
    """Run `fn` (returning status code and JSON body) once per (scope, key); replay afterwards."""
    if not key:
        status, body = fn()
        return JSONResponse(body, status_code=status)
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed("The Idempotency-Key header is too long.", code="invalid_idempotency_key")
    fingerprint = request_fingerprint(payload)
    # One statement claims the key: INSERT … ON CONFLICT DO NOTHING RETURNING id. A racing twin waits
    # on the unique index (PostgreSQL) or the write lock (SQLite), then finds the row and replays.
    dialect = session.get_bind().dialect.name
    # Plain Core on the session's connection (these statements need nothing from the ORM).
    claimed = session.connection().execute(_CLAIM[dialect], {
        "merchant_id": merchant_id, "scope": scope, "key": key, "request_hash": fingerprint,
        "created_at": clock.now()}).scalar()
    if claimed is not None:
        status, body = fn()
        session.connection().execute(_ANSWER, {"claimed_id": claimed, "answer_status": status, "answer": body})
        return JSONResponse(body, status_code=status)
    existing = _find(session, merchant_id, scope, key)
    if existing is None:  # pragma: no cover - the row that blocked us was rolled back; let the client retry
        raise Conflict("A request with this Idempotency-Key is still in progress.", code="request_in_progress")
    if existing.request_hash != fingerprint:
        raise ValidationFailed("This Idempotency-Key was used for a different request.", code="idempotency_key_reused")
    if existing.status_code is None:
        raise Conflict("A request with this Idempotency-Key is still in progress.", code="request_in_progress")
    return JSONResponse(existing.response, status_code=existing.status_code, headers={"Idempotent-Replayed": "true"})


def _find(session: Session, merchant_id: int, scope: str, key: str) -> IdempotencyKey | None:
    return session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.merchant_id == merchant_id, IdempotencyKey.scope == scope, IdempotencyKey.key == key
        )
    ).first()
