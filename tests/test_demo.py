"""The demo seeder: deterministic, in one transaction, with working logins, on both databases."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu import _has_module
from siyu.core.demo import DEMO_PASSWORD, DEMO_SLUG
from siyu.db import Base, Database
from siyu.demo import DemoExists, demo_now, seed_demo
from tests.conftest import BACKENDS, fresh_database

SCALE = 0.02
NOW = demo_now(dt.date(2026, 5, 20))
# Columns that are random by design (argon2 salts), not by accident.
RANDOM_BY_DESIGN = {"password_hash"}


def table_digests(database: Database) -> dict[str, str]:
    """A digest per table of every row (by id), leaving out columns that are random by design."""
    digests = {}
    with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            cols = [c for c in table.columns if c.name not in RANDOM_BY_DESIGN]
            order = [table.c.id] if "id" in table.c else list(table.primary_key.columns)
            rows = conn.execute(select(*cols).order_by(*order)).all()
            blob = json.dumps([list(r) for r in rows], default=str, ensure_ascii=False)
            digests[table.name] = hashlib.sha256(blob.encode()).hexdigest()
    return digests


@pytest.fixture(params=BACKENDS)
def demo_database(request: pytest.FixtureRequest):
    database = fresh_database(request.param, name="demo")
    yield database
    database.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request: pytest.FixtureRequest):
    """One demo per backend for the tests that only read it or add to it (seeding is the slow part), with
    the digests of its tables taken right after seeding."""
    database = fresh_database(request.param, name="demo_seeded")
    ctx = seed_demo(database, scale=SCALE, now=NOW)
    yield request.param, database, ctx, table_digests(database)
    database.dispose()


def test_seed_demo_builds_the_merchant_with_working_logins(seeded) -> None:
    # when the demo is seeded
    _backend, demo_database, ctx, _digests = seeded

    # then the context names the merchant, its stores and guides
    assert ctx.merchant_id > 0 and ctx.store_ids and ctx.guide_ids
    assert ctx.now == NOW

    # and the fixed logins work through the API
    from siyu.app import create_app

    with TestClient(create_app(configure_database=False, database=demo_database)) as client:
        for username, role in (("admin", "brand_admin"), ("guide1", "guide")):
            answer = client.post("/api/v1/admin/auth/token", json={"username": username, "password": DEMO_PASSWORD})
            assert answer.status_code == 200, answer.text
            assert answer.json()["staff"]["role"] == role
            assert answer.json()["staff"]["merchant_id"] == ctx.merchant_id
        wrong = client.post("/api/v1/admin/auth/token", json={"username": "admin", "password": "nope-nope"})
        assert wrong.status_code == 401
        assert client.get(f"/api/v1/shop/{DEMO_SLUG}/stores").status_code in (200, 404)

    # and the ledgers balance
    if _has_module("siyu.ledger.service"):
        from siyu.ledger import service as ledger

        if hasattr(ledger, "verify"):
            with demo_database.scope() as session:
                assert ledger.verify(session, ctx.merchant_id) == []


def test_seed_demo_refuses_a_second_demo_and_changes_nothing(seeded) -> None:
    _backend, demo_database, _ctx, _digests = seeded
    before = table_digests(demo_database)

    with pytest.raises(DemoExists):
        seed_demo(demo_database, scale=SCALE, now=NOW)

    assert table_digests(demo_database) == before


def test_two_runs_build_identical_data(seeded) -> None:
    # given two fresh databases seeded the same way (the module's demo, as it was seeded, and another)
    backend, _database, _ctx, first = seeded
    digests = [first]
    database = fresh_database(backend, name="demo")
    try:
        seed_demo(database, scale=SCALE, now=NOW)
        digests.append(table_digests(database))
    finally:
        database.dispose()

    # then every table holds the same rows
    differing = sorted(name for name in digests[0] if digests[0][name] != digests[1][name])
    assert differing == []


def test_a_failing_seeder_leaves_nothing_behind(demo_database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import siyu.demo as demo_module

    def broken(session, ctx):
        raise RuntimeError("seeder broke")

    real = demo_module.seeders()
    monkeypatch.setattr(demo_module, "seeders", lambda: [*real[:1], ("broken", broken)])
    with pytest.raises(RuntimeError, match="seeder broke"):
        seed_demo(demo_database, scale=SCALE, now=NOW)

    from siyu.demo import demo_exists

    assert not demo_exists(demo_database)


def test_demo_now_is_local_midnight_in_utc() -> None:
    assert demo_now(dt.date(2026, 5, 20)) == dt.datetime(2026, 5, 19, 16, 0, tzinfo=dt.UTC)


def test_demo_funnel_narrows_from_exposure_to_repurchase(seeded) -> None:
    # given the demo (its bulk orders carry what their buyers browsed, beside shoppers who left)
    _backend, demo_database, ctx, _digests = seeded
    from siyu.analytics import service as analytics
    from siyu.core.auth import system_principal

    # when the brand looks at its funnel over the demo's year
    day = NOW.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    filters = analytics.make_filters(start=day - dt.timedelta(days=364), end=day)
    with demo_database.scope() as session:
        counts = analytics.funnel(session, actor=system_principal(ctx.merchant_id), filters=filters).overall.counts

    # then each step has fewer people than the one before it, as a shop's funnel does
    assert counts["exposure"] > counts["view"] > counts["order"] >= counts["pay"] >= counts["repurchase"] > 0, counts
    assert counts["add_to_cart"] > 0, counts
