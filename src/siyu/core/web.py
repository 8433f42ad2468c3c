"""HTTP plumbing shared by every domain's api.py and views.py: the per-request session (one
commit per request, before the response is sent), templates and page helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session


def get_session(request: Request) -> Iterator[Session]:
    from siyu.db import get_database

    with get_database().scope() as session:
        # Template helpers of higher domains read through the request's own session (a second one
        # would wait on SQLite's write lock, which this one holds).
        request.state.db_session = session
        yield session


# scope="function": the commit happens when the endpoint returns, before the response is sent, so a
# client never sees success for work that did not commit.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def wants_html(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/console") or path.startswith("/shop/")


def form_str(form: Any, name: str, default: str = "", max_length: int = 2000) -> str:
    """A form field as a trimmed string (uploads and missing fields become the default)."""
    value = form.get(name, default)
    if not isinstance(value, str):
        return default
    return value.strip()[:max_length]


async def posted_form(request: Request) -> Any:
    """The posted form, read in the event loop so that page handlers can stay plain `def`."""
    return await request.form()


PostedForm = Annotated[Any, Depends(posted_form)]
