"""The demo merchant (示例品牌), built by every domain's `demo.seed(session, ctx)` in DOMAINS order.

Deterministic: one `random.Random(DEMO_SEED)` is passed along, and `ctx.now` is fixed — the start of
the current day in Asia/Shanghai (00:00 local) — so data is laid out relative to "today" and two runs
on the same day build identical rows. `now=` overrides it (the tests pass a fixed instant). The clock
is frozen at `ctx.now` while seeding, so columns defaulting to `clock.now()` are deterministic too.
Everything happens in one transaction: a failing seeder leaves the database as it was.
"""

from __future__ import annotations

import datetime as dt
import importlib
import random
from collections.abc import Callable

from sqlalchemy import select

from siyu import DOMAINS, _has_module
from siyu.core import clock, ids
from siyu.core.demo import DEMO_PASSWORD, DEMO_SEED, DEMO_SLUG, DemoContext
from siyu.db import Database, import_all_models, use_database

__all__ = ["DEMO_PASSWORD", "DEMO_SLUG", "DemoExists", "demo_exists", "demo_now", "seed_demo", "seeders"]


class DemoExists(Exception):
    """The database already holds the demo merchant."""


def demo_now(today: dt.date | None = None) -> dt.datetime:
    """00:00 Asia/Shanghai of `today` (the local date of clock.now() by default), in UTC."""
    day = today or clock.now().astimezone(clock.SHANGHAI).date()
    return dt.datetime.combine(day, dt.time(), tzinfo=clock.SHANGHAI).astimezone(dt.UTC)


def seeders() -> list[tuple[str, Callable]]:
    """(domain, seed function) for every domain that has a demo module, lowest domain first."""
    found = []
    for domain in DOMAINS:
        name = f"siyu.{domain}.demo"
        if _has_module(name):
            seed = getattr(importlib.import_module(name), "seed", None)
            if seed is not None:
                found.append((domain, seed))
    return found


def demo_exists(database: Database) -> bool:
    from siyu.merchants.models import Merchant

    with database.scope() as session:
        return session.scalar(select(Merchant.id).where(Merchant.slug == DEMO_SLUG)) is not None


def seed_demo(database: Database, *, scale: float = 1.0, now: dt.datetime | None = None) -> DemoContext:
    """Build the demo merchant in `database` (whose schema must exist) and return the context the
    seeders filled. Raises DemoExists when the demo merchant is already there."""
    if not 0 < scale <= 10:
        raise ValueError("scale must be in (0, 10]")
    import_all_models()
    if demo_exists(database):
        raise DemoExists(f"the database already holds the merchant {DEMO_SLUG!r}")
    ctx = DemoContext(rng=random.Random(DEMO_SEED), now=(now or demo_now()).astimezone(dt.UTC), scale=scale)
    # use_database: event handlers run after the commit against this database, not the process default.
    # ids.seeded: order numbers, pickup codes, payment numbers and nonces from a seeded generator of their
    # own, so two builds are identical (handlers running after the commit included).
    with ids.seeded(random.Random(DEMO_SEED + 1)), use_database(database), clock.frozen(ctx.now), \
            database.scope() as session:
        for _domain, seed in seeders():
            seed(session, ctx)
            session.flush()
        _check_ledgers(session, ctx)
    return ctx


def _check_ledgers(session, ctx: DemoContext) -> None:
    """The ledger invariant (sum of entries == balance) must hold on the demo as anywhere else."""
    if not ctx.merchant_id or not _has_module("siyu.ledger.service"):
        return
    from siyu.ledger import service as ledger

    verify = getattr(ledger, "verify", None)
    if verify is None:
        return
    mismatches = verify(session, ctx.merchant_id)
    if mismatches:
        raise RuntimeError(f"demo ledgers do not balance: {mismatches[:5]}")
