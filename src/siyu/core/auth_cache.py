"""A small per-process cache with a time to live, for what every shop request looks up: the merchant of
the URL and the customer behind a token.

Every process may hold an entry for at most its TTL (a few seconds), so a change made in another
process (a revoked token, new merchant settings) is seen there at most that late; the process that
makes the change drops its own entry at once (the owners of the cached rows do that, on write and
again after the commit, so that a request racing the change cannot put the old value back for long).
Nothing here is a lock or a counter: a miss only costs the query it replaces.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


class TTLCache:
    """key -> value for `ttl` seconds (monotonic clock), at most `max_size` entries (the oldest go first)."""

    def __init__(self, *, ttl: float, max_size: int = 10_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._data.pop(key, None)
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._data) >= self.max_size:
                # Dicts keep insertion order: drop the oldest tenth in one go.
                for old in list(self._data)[: max(1, self.max_size // 10)]:
                    self._data.pop(old, None)
            self._data[key] = (time.monotonic() + self.ttl, value)

    def pop(self, key: Hashable) -> None:
        self._data.pop(key, None)

    def pop_where(self, test: Callable[[Hashable, Any], bool]) -> None:
        """Drop every entry for which `test(key, value)` holds."""
        with self._lock:
            for key, (_expires, value) in list(self._data.items()):
                if test(key, value):
                    self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


FORGET_KEY = "siyu_forget_after_transaction"


def forget_now_and_after_commit(session: Session, forget: Callable[[], None]) -> None:
    """Call `forget` now and once more when `session`'s outermost transaction ends (commit or rollback): a
    request of this process that read the old row in between has then not cached it for longer."""
    forget()
    session.info.setdefault(FORGET_KEY, []).append(forget)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: Any) -> None:
    if transaction.parent is not None or FORGET_KEY not in session.info:
        return
    for forget in session.info.pop(FORGET_KEY):
        forget()


_engine_keys: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_next_key = itertools.count(1)


def engine_key(session: Session) -> int:
    """What tells one database from another in a cache key (tests use several in one process): a number
    given to each engine once, never reused."""
    bind: Any = session.get_bind()
    engine = getattr(bind, "engine", bind)
    key = _engine_keys.get(engine)
    if key is None:
        key = _engine_keys.setdefault(engine, next(_next_key))
    return key
