"""`siyu bench analytics` data: deterministic bulk generation (COPY / executemany) and the naive SQL run on
both databases, and re-timing a kept data set (--reuse). Counts only: tests never assert timings."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, inspect, select, text

from siyu.analytics import service as analytics
from siyu.bench import analytics as bench
from siyu.core import clock
from siyu.customers.models import Customer
from siyu.merchants import service as merchants
from siyu.merchants.models import Staff
from siyu.orders.models import Order

NOW = dt.datetime(2026, 6, 10, 2, 0, tzinfo=dt.UTC)


def test_generated_merchant_is_consistent_and_every_view_runs(db, backend):
    with clock.frozen(NOW):
        data = bench.generate(db, customers=300, orders=3000, now=NOW)
        mid = data["merchant_id"]
        assert data["orders"] == 3000 and data["customers"] == 300
        assert db.scalar(select(func.count()).select_from(Order).where(Order.merchant_id == mid)) == 3000
        # the customers' stats were computed from exactly these orders
        spent = db.scalar(select(func.sum(Customer.total_spent_cents)).where(Customer.merchant_id == mid))
        kept = db.scalar(select(func.sum(Order.total_cents - Order.refunded_cents)).where(Order.merchant_id == mid))
        assert spent == kept
        paid = db.scalar(select(func.sum(Customer.paid_orders)).where(Customer.merchant_id == mid))
        assert paid == 3000
        # deterministic: the same stream again gives the same totals
        again = bench._Orders(300, 3000, NOW)
        assert sum(t - r for _i, _p, t, r, *_x in again) == kept
        admin = merchants.principal_for(db, db.get(Staff, data["admin_id"]))
        f = analytics.make_filters()
        # the service and the naive SQL agree on the period's GMV
        gmv = analytics.decompose(db, actor=admin, filters=f)
        params = {"m": mid, "since": f.since, "until": f.until, "d0": f.start, "d1": f.end, "year_ago": f.since}
        queries = bench.naive_queries(backend)
        rows = db.execute(text(queries["gmv"][0]), params).fetchall()
        assert sum(r[3] for r in rows) == gmv.current.gmv_cents
        assert sum(r[1] for r in rows) == gmv.current.orders
        mix = db.execute(text(queries["channel_mix"][0]), params).fetchall()
        assert sum(r[3] for r in mix) == analytics.channel_mix(db, actor=admin, filters=f).net_cents
        for sqls in queries.values():
            for sql in sqls:
                db.execute(text(sql), params).fetchall()
        assert analytics.fission(db, actor=admin, filters=analytics.make_filters(default_days=365)).new_customers > 0


def _order_rows(db, mid):
    """The merchant's orders without its ids (customer as its index among the merchant's customers)."""
    first = db.scalar(select(func.min(Customer.id)).where(Customer.merchant_id == mid))
    return [(r[0] - first, *r[1:]) for r in db.execute(text(
        "SELECT customer_id, total_cents, refunded_cents, status, fulfilment_type, paid_at, created_at "
        "FROM orders WHERE merchant_id = :m ORDER BY id"), {"m": mid})]


def test_generation_is_deterministic_and_a_bulk_fill_restores_indexes_and_keys(db, backend):
    # given a bulk generation (secondary indexes and, on PostgreSQL, foreign keys dropped for the fill)
    from siyu.db import Base

    with clock.frozen(NOW):
        bulk = bench.generate(db, customers=40, orders=400, now=NOW, bulk=True)
        plain = bench.generate(db, customers=40, orders=400, now=NOW)
    insp = inspect(db.connection())
    # then every index and foreign key of the filled tables is back
    for name in bench.BULK_TABLES:
        table = Base.metadata.tables[name]
        present = {ix["name"] for ix in insp.get_indexes(name)}
        assert {ix.name for ix in table.indexes if not ix.unique} <= present
        if backend == "postgresql":
            keys = {fk["name"] for fk in insp.get_foreign_keys(name)}
            assert {fk.name for fk in table.foreign_key_constraints} == keys
    # and the same seed gave the same rows and the same customer stats
    assert _order_rows(db, bulk["merchant_id"]) == _order_rows(db, plain["merchant_id"])
    stats = ("SELECT paid_orders, total_spent_cents, refunded_cents, first_purchase_at, last_purchase_at, "
             "last_order_cents, max_order_cents, created_at FROM customers WHERE merchant_id = :m ORDER BY id")
    a = db.execute(text(stats), {"m": bulk["merchant_id"]}).fetchall()
    assert a == db.execute(text(stats), {"m": plain["merchant_id"]}).fetchall()
    assert len(a) == 40 and sum(r[0] for r in a) == 400
    # the stats are the orders' own: last_order_cents is the latest order's total
    mid = bulk["merchant_id"]
    cid = db.scalar(select(func.min(Customer.id)).where(Customer.merchant_id == mid))
    latest = db.execute(select(Order.total_cents, Order.paid_at).where(Order.customer_id == cid)
                        .order_by(Order.paid_at.desc(), Order.total_cents.desc())).first()
    customer = db.get(Customer, cid)
    assert (customer.last_order_cents, customer.last_purchase_at) == (latest[0], latest[1])
    assert customer.created_at <= customer.first_purchase_at
    for (kind, n) in db.execute(text("SELECT kind, COUNT(*) FROM attribution_funnel_events WHERE merchant_id = :m "
                                     "GROUP BY kind"), {"m": mid}):
        assert kind in (1, 2, 3) and n > 0
    assert bulk["funnel_events"] == plain["funnel_events"] > 0


def _bench_target(backend, tmp_path):
    """(run() keyword arguments, a context) for a committed bench database of this backend."""
    import contextlib

    from tests.conftest import committed

    if backend == "sqlite":
        return {"keep": tmp_path / "bench.db"}, contextlib.nullcontext()
    return None, committed(backend, "bench")


def test_reuse_times_a_kept_database_brought_to_the_current_models(backend, tmp_path):
    # given a generated bench data set that was kept, and a schema that has since moved on
    target, ctx = _bench_target(backend, tmp_path)
    with ctx as database:
        if target is None:
            target = {"database_url": database.url}
        made = bench.run(customers=50, orders=500, generate_only=True, **target)
        assert "views" not in made and made["data"]["orders"] == 500
        url = target.get("database_url") or f"sqlite:///{target['keep']}"
        from siyu.db import Database

        old = Database(url)
        with old.engine.begin() as conn:  # what an older model had: a column and an index fewer
            conn.execute(text("ALTER TABLE customers DROP COLUMN birthday"))
            conn.execute(text("DROP INDEX ix_orders_merchant_paid_at"))
            conn.execute(text("ALTER TABLE analytics_daily_sales ADD COLUMN stale INTEGER NOT NULL DEFAULT 0"))
        old.dispose()
        # when it is timed again
        report = bench.run(reuse=True, views=("gmv", "cohorts", "rfm"), skip_naive=True, **target)
        # then nothing was generated: the same merchant and rows, brought to the current models
        data = report["data"]
        assert report["reused"] is True
        assert {k: data[k] for k in ("merchant_id", "customers", "orders", "funnel_events", "fission_edges")} == {
            k: made["data"][k] for k in ("merchant_id", "customers", "orders", "funnel_events", "fission_edges")}
        assert data["schema"]["added_columns"] == ["customers.birthday"]
        assert data["schema"]["created_indexes"] == ["ix_orders_merchant_paid_at"]
        assert data["schema"]["changed_tables"] == ["customers", "orders"]  # analyzed again
        assert "analytics_daily_sales" in data["schema"]["recreated"]
        assert data["rebuild_seconds"] >= 0
        # the nightly snapshots the RFM views read, written first: the day before the period (the trend),
        # and the period 60 days back's end day and the day before it
        assert len(data["rfm_snapshot_seconds"]) == 3 and min(data["rfm_snapshot_seconds"].values()) >= 0
        assert list(report["views"]) == ["gmv", "cohorts", "rfm"]
        assert all(v["naive_sql_seconds"] is None for v in report["views"].values())
        again = Database(url)
        with again.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("analytics_daily_sales")}
            assert "stale" not in columns  # the derived table was made again from the model
            assert conn.scalar(text("SELECT COUNT(*) FROM analytics_rfm_snapshots WHERE merchant_id = :m"),
                               {"m": data["merchant_id"]}) > 0
            assert conn.scalar(text("SELECT COUNT(*) FROM customers WHERE birthday IS NULL AND merchant_id = :m"),
                               {"m": data["merchant_id"]}) == 50
            # the rebuilt aggregates hold every kept cent of the orders
            kept = conn.scalar(text("SELECT SUM(total_cents - refunded_cents) FROM orders WHERE merchant_id = :m"),
                               {"m": data["merchant_id"]})
            assert conn.scalar(text("SELECT SUM(total_spent_cents) FROM customers WHERE merchant_id = :m"),
                               {"m": data["merchant_id"]}) == kept
        again.dispose()
        # timing the views again on the aggregates rebuilt above: nothing is dropped or rebuilt
        stats_rows = "SELECT COUNT(*) FROM analytics_customer_stats WHERE merchant_id = :m"
        with again.engine.connect() as conn:
            built = conn.scalar(text(stats_rows), {"m": data["merchant_id"]})
        again.dispose()
        views_only = bench.run(reuse=True, rebuild=False, views=("channel_mix",), **target)
        assert views_only["data"]["schema"] == {"recreated": [], "added_columns": [], "created_indexes": [],
                                                "changed_tables": []}
        assert views_only["data"]["rebuild"] is None and list(views_only["views"]) == ["channel_mix"]
        assert views_only["views"]["channel_mix"]["naive_sql_seconds"] is not None
        with again.engine.connect() as conn:
            assert conn.scalar(text(stats_rows), {"m": data["merchant_id"]}) == built > 0
        again.dispose()
        # a kept file is not overwritten, and reuse needs something to reuse
        if backend == "sqlite":
            with pytest.raises(RuntimeError, match="exists"):
                bench.run(customers=50, orders=500, generate_only=True, **target)
            with pytest.raises(RuntimeError, match="does not exist"):
                bench.run(reuse=True, keep=tmp_path / "missing.db")
        with pytest.raises(RuntimeError, match="unknown views"):
            bench.run(reuse=True, views=("nope",), **target)
