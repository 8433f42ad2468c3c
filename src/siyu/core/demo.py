"""What the demo seeder passes from one domain's `demo.seed(session, ctx)` to the next.

`siyu seed-demo` calls `siyu.<domain>.demo.seed(session, ctx)` for every domain in DOMAINS order,
in one transaction. Everything is deterministic: use only `ctx.rng` for randomness and
`ctx.now` for time (never the wall clock), so that two runs build the same data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

from siyu.core.auth import Principal

DEMO_SLUG = "demo"
DEMO_PASSWORD = "siyu-demo"
DEMO_SEED = 2026


@dataclasses.dataclass
class DemoContext:
    rng: random.Random
    # The demo's "now": fixed data is laid out relative to it.
    now: dt.datetime
    # Filled by merchants.demo: the demo merchant, its brand admin principal, stores and guides.
    merchant_id: int = 0
    admin: Principal | None = None
    store_ids: list[int] = dataclasses.field(default_factory=list)
    guide_ids: list[int] = dataclasses.field(default_factory=list)
    # guide id -> store id
    guide_store: dict[int, int] = dataclasses.field(default_factory=dict)
    # Anything a later domain needs from an earlier one (product ids, customer ids …).
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    # 1.0 builds the full demo; tests pass a small scale to build a small one fast.
    scale: float = 1.0

    def count(self, full: int) -> int:
        return max(1, int(full * self.scale))
