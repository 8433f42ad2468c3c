"""HTTP plumbing shared by every domain's api.py and views.py: the per-request session (one
commit per request, before the response is sent), templates and page helpers."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from sqlalchemy.orm import Session

T = TypeVar("T")


class _Unit:
    """A request's unit of work, as `get_session` opened it."""

    __slots__ = ("database", "session", "done")

    def __init__(self, database: Any, session: Session) -> None:
        self.database, self.session, self.done = database, session, False

    def finish(self, *, commit: bool) -> None:
        if not self.done:
            self.done = True
            self.database.finish(self.session, commit=commit)


_request_unit: contextvars.ContextVar[_Unit | None] = contextvars.ContextVar("siyu_request_unit", default=None)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work (`Database.open_session` / `finish`). Opening it does no I/O, so it
    happens here in the event loop. A plain `def` endpoint ends it (commit or rollback, close, event
    dispatch) in its own worker thread as it returns (`ends_unit_of_work`); otherwise it is ended here,
    in one worker thread. (Each thread hand-off costs: a sync dependency run in a worker thread of its
    own was a fifth of a simple request's CPU, bench/README.md.)"""
    from siyu.db import get_database

    database = get_database()
    session = database.open_session()
    # Template helpers of higher domains read through the request's own session (a second one would
    # wait on SQLite's write lock, which this one holds).
    request.state.db_session = session
    unit = _Unit(database, session)
    _request_unit.set(unit)
    try:
        yield session
    except BaseException:
        if not unit.done:
            await in_thread(unit.finish, commit=False)
        raise
    if not unit.done:
        await in_thread(unit.finish, commit=True)


def ends_unit_of_work(endpoint: Callable[..., T]) -> Callable[..., T]:
    """A plain `def` endpoint that ends its request's unit of work (`get_session`) in the worker thread
    it runs in, as it returns (commit) or raises (roll back): the same point as before the response,
    without a second thread hand-off for the commit. Endpoints without a session are unchanged."""
    if getattr(endpoint, "ends_unit_of_work", False):
        return endpoint

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> T:
        try:
            result = endpoint(*args, **kwargs)
        except BaseException:
            unit = _request_unit.get()
            if unit is not None:
                unit.finish(commit=False)
            raise
        unit = _request_unit.get()
        if unit is not None:
            unit.finish(commit=True)
        return result

    run.ends_unit_of_work = True  # type: ignore[attr-defined]
    return run


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn` in a worker thread, shielded from cancellation (a unit of work always ends), outside the
    worker-thread limit (as FastAPI ends a dependency: the end of a request must never wait for a thread
    that requests waiting for their start hold)."""
    with anyio.CancelScope(shield=True):
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs),
                                              limiter=anyio.CapacityLimiter(1))


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
