"""Where the randomness of identifiers comes from: order numbers, pickup codes, payment numbers, nonces
and notification ids.

Real runs draw from the system's randomness (`secrets`) and order numbers from the clock. The demo
seeder runs inside `seeded(rng)`, which draws everything from its seeded generator and numbers orders
from a counter instead, so two builds of the demo are identical. The switch is a context variable: a
request served meanwhile on another thread keeps real randomness.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import itertools
import random
import secrets
import time
from collections.abc import Iterator


@dataclasses.dataclass
class _Seeded:
    rng: random.Random
    counter: Iterator[int]


_seeded: contextvars.ContextVar[_Seeded | None] = contextvars.ContextVar("siyu_ids_seeded", default=None)


@contextlib.contextmanager
def seeded(rng: random.Random) -> Iterator[None]:
    """Identifiers from `rng` (and a counter for clock slots) while inside."""
    token = _seeded.set(_Seeded(rng=rng, counter=itertools.count(1)))
    try:
        yield
    finally:
        _seeded.reset(token)


def randbelow(n: int) -> int:
    """A random int in [0, n)."""
    s = _seeded.get()
    return s.rng.randrange(n) if s is not None else secrets.randbelow(n)


def token_hex(nbytes: int = 32) -> str:
    s = _seeded.get()
    return f"{s.rng.getrandbits(8 * nbytes):0{2 * nbytes}x}" if s is not None else secrets.token_hex(nbytes)


def uuid_hex() -> str:
    """32 hex digits, like uuid.uuid4().hex."""
    return token_hex(16)


def clock_slot(modulus: int) -> int:
    """The real clock in 10 µs steps (modulo `modulus`); a counter when seeded."""
    s = _seeded.get()
    if s is not None:
        return next(s.counter) % modulus
    return (time.time_ns() // 10_000) % modulus
