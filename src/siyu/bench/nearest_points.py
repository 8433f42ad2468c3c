"""`siyu bench nearest-points`: how many nearest-pickup-point searches per second with N points.

Builds a bench merchant with `points` active pickup points scattered over a city-sized area (on a
temporary SQLite file, or on `--database-url`, which must already have the schema), then runs
`queries` searches from random locations through `groupbuy.service.points.nearest_points` (the
bounding-box prefilter on the indexed latitude/longitude, then exact haversine) in one process and
one session. It also times the brute-force search (measure every point) on a sample and checks that
both give the same answer. Prints JSON.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from siyu.bench.common import latency_summary

CENTRE = (31.2304, 121.4737)  # Shanghai
SPREAD_DEG = 0.35  # about ±35 km north-south


@contextlib.contextmanager
def _bench_url(database_url: str | None) -> Iterator[tuple[str, bool]]:
    if database_url:
        yield database_url, False
        return
    with tempfile.TemporaryDirectory(prefix="siyu-bench-points-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}", True


def _seed(session: Any, *, points: int, rng: random.Random) -> int:
    from siyu.core import clock
    from siyu.customers.models import Customer
    from siyu.groupbuy.models import Leader
    from siyu.merchants import service as merchants

    merchant = merchants.create_merchant(session, slug=f"bp{int(time.time() * 1000) % 10**9}", name="自提点压测")
    now = clock.now()
    customer_ids = list(session.scalars(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), [
        {"merchant_id": merchant.id, "nickname": f"团长{i}", "created_at": now, "updated_at": now}
        for i in range(points)]))
    rows = [{"merchant_id": merchant.id, "customer_id": cid, "status": "active", "name": f"团长{i}",
             "phone": "13900000000", "point_name": f"自提点{i}", "address": "上海市", "route": "",
             "latitude": CENTRE[0] + rng.uniform(-SPREAD_DEG, SPREAD_DEG),
             "longitude": CENTRE[1] + rng.uniform(-SPREAD_DEG, SPREAD_DEG), "applied_at": now}
            for i, cid in enumerate(customer_ids)]
    for start in range(0, len(rows), 2000):
        session.execute(insert(Leader), rows[start:start + 2000])
    return merchant.id


def run(*, points: int = 10_000, queries: int = 2000, radius_m: int = 3000, limit: int = 20,
        database_url: str | None = None, seed: int = 2026) -> dict[str, Any]:
    from siyu.db import Base, Database, import_all_models, use_database
    from siyu.groupbuy.models import Leader
    from siyu.groupbuy.service import points as search

    rng = random.Random(seed)
    import_all_models()
    with _bench_url(database_url) as (url, temporary):
        database = Database(url)
        try:
            if temporary:
                Base.metadata.create_all(database.engine)
            else:
                from siyu import migrate

                migrate.upgrade(url)  # a given database is brought to the current schema, as `bench checkout` does
            with use_database(database):
                started = time.perf_counter()
                with database.scope() as session:
                    merchant_id = _seed(session, points=points, rng=rng)
                seed_seconds = time.perf_counter() - started
                if database.dialect == "postgresql":
                    # Fresh statistics, as autovacuum would have them in production.
                    with database.engine.connect() as conn:
                        conn.exec_driver_sql("ANALYZE groupbuy_leaders")
                        conn.commit()
                locations = [(CENTRE[0] + rng.uniform(-SPREAD_DEG, SPREAD_DEG),
                              CENTRE[1] + rng.uniform(-SPREAD_DEG, SPREAD_DEG)) for _ in range(queries)]
                latencies: list[float] = []
                found = 0
                with database.scope() as session:
                    search.nearest_points(session, merchant_id=merchant_id, lat=CENTRE[0], lng=CENTRE[1],
                                          radius_m=radius_m, limit=limit)  # warm-up
                    t0 = time.perf_counter()
                    for lat, lng in locations:
                        q0 = time.perf_counter()
                        found += len(search.nearest_points(session, merchant_id=merchant_id, lat=lat, lng=lng,
                                                           radius_m=radius_m, limit=limit))
                        latencies.append(time.perf_counter() - q0)
                    elapsed = time.perf_counter() - t0
                    # Brute force on a sample: load every point, measure all, and compare the answers.
                    sample = locations[: max(1, min(50, queries))]
                    brute_seconds = 0.0
                    agree = 0
                    for lat, lng in sample:
                        b0 = time.perf_counter()
                        rows = session.execute(select(Leader.id, Leader.latitude, Leader.longitude).where(
                            Leader.merchant_id == merchant_id, Leader.status == "active")).all()
                        measured = [(search.haversine_m(lat, lng, a, b), i) for i, a, b in rows]
                        brute = [i for d, i in sorted(measured) if d <= radius_m][:limit]
                        brute_seconds += time.perf_counter() - b0
                        fast = [p.leader.id for p in search.nearest_points(
                            session, merchant_id=merchant_id, lat=lat, lng=lng, radius_m=radius_m, limit=limit)]
                        agree += brute == fast
        finally:
            database.dispose()
    return {
        "benchmark": "nearest-points",
        "database": url.split(":", 1)[0] if temporary else url.split("@")[-1],
        "database_source": "temporary SQLite file" if temporary else "given",
        "points": points, "queries": queries, "radius_m": radius_m, "limit": limit,
        "seed_seconds": round(seed_seconds, 2),
        "queries_per_second": round(queries / elapsed, 1) if elapsed else None,
        "latency": latency_summary(latencies),
        "average_results": round(found / queries, 2),
        "brute_force": {"queries": len(sample), "queries_per_second": round(len(sample) / brute_seconds, 1)
                        if brute_seconds else None, "same_answer": f"{agree}/{len(sample)}"},
    }
