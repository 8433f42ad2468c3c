"""Cursor pagination: newest first by id; the cursor is an opaque token for the last id seen."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from siyu.core.errors import BadRequest

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclasses.dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor in (None, ""):
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        prefix, value = text.split(":", 1)
        last_id = int(value)
        if prefix != "id" or last_id <= 0 or last_id > 2**62:
            raise ValueError
        return last_id
    except (ValueError, UnicodeError, base64.binascii.Error) as exc:  # type: ignore[attr-defined]
        raise BadRequest("The cursor is not valid.", code="invalid_cursor") from exc


def paginate(session: Session, stmt: Select[Any], id_column: Any, *, cursor: str | None, limit: int | None) -> Page[Any]:
    """Run `stmt` (already filtered and scoped) newest first, one page at a time."""
    limit = max(1, min(limit or DEFAULT_LIMIT, MAX_LIMIT))
    last_id = decode_cursor(cursor)
    if last_id is not None:
        stmt = stmt.where(id_column < last_id)
    rows = list(session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].id)
    return Page(items=rows, next_cursor=next_cursor)
