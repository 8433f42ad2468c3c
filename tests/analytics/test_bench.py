"""`siyu bench analytics` data: deterministic bulk generation (COPY / executemany) and the naive SQL run on
both databases. Counts only: tests never assert timings."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text

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
