"""`siyu bench api`: read throughput and latency of a real server over HTTP.

A server (uvicorn with uvloop/httptools, in a subprocess so the load generator does not share its
GIL) is started on a free port against the demo database (`./siyu-demo.db` when it holds the demo,
else a temporary SQLite file seeded with a small demo). Each endpoint gets `requests` GETs from
`concurrency` threads, each with its own keep-alive connection. The load generator is one Python
process, so at high rates it is part of what is measured: compare runs, not absolute numbers.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from siyu.bench.common import free_port, percentile, running_server
from siyu.core.demo import DEMO_PASSWORD, DEMO_SLUG

__all__ = ["free_port", "measure", "run", "running_server"]
# Kept for callers of the earlier name.
_percentile = percentile

DEMO_DB = Path("siyu-demo.db")


def measure(base: str, path: str, *, requests: int, concurrency: int,
            headers: dict[str, str] | None = None) -> dict[str, Any]:
    """GET `path` `requests` times from `concurrency` threads; throughput and latency percentiles."""
    concurrency = max(1, min(concurrency, requests))
    shares = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)

    def worker(n: int) -> None:
        nonlocal errors
        mine: list[float] = []
        failed = 0
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            client.get("/healthz")  # open the connection before the clock starts
            start_gate.wait()
            for _ in range(n):
                t0 = time.perf_counter()
                try:
                    ok = client.get(path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                mine.append(time.perf_counter() - t0)
                failed += not ok
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in shares]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()
    ms = [v * 1000 for v in latencies]
    return {
        "path": path,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(ms[-1], 2) if ms else 0.0,
    }


def endpoints(base: str, slug: str = DEMO_SLUG) -> tuple[dict[str, tuple[str, dict[str, str] | None]], dict[str, str]]:
    """The endpoints to measure, found on the running server, and those skipped with the reason."""
    found: dict[str, tuple[str, dict[str, str] | None]] = {"healthz": ("/healthz", None)}
    skipped: dict[str, str] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        products = client.get(f"/api/v1/shop/{slug}/products", params={"limit": 20})
        if products.status_code == 200:
            found["shop_products"] = (f"/api/v1/shop/{slug}/products?limit=20", None)
            items = products.json().get("items") or []
            if items:
                found["shop_product_detail"] = (f"/api/v1/shop/{slug}/products/{items[0]['id']}", None)
            else:
                skipped["shop_product_detail"] = "the shop lists no product"
        else:
            skipped["shop_products"] = f"GET products answered {products.status_code}"
            skipped["shop_product_detail"] = "no product list"
        token = client.post("/api/v1/admin/auth/token", json={"username": "admin", "password": DEMO_PASSWORD})
        if token.status_code != 200:
            skipped["admin_customers"] = f"admin sign-in answered {token.status_code}"
        else:
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            listed = client.get("/api/v1/admin/customers", params={"limit": 20}, headers=headers)
            if listed.status_code == 200:
                found["admin_customers"] = ("/api/v1/admin/customers?limit=20", headers)
            else:
                skipped["admin_customers"] = f"GET customers answered {listed.status_code}"
    return found, skipped


def _has_demo(url: str) -> bool:
    from siyu import migrate
    from siyu.db import Database
    from siyu.demo import demo_exists

    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        return False
    if not url.startswith("sqlite"):
        if not migrate.is_up_to_date(url):
            return False
    else:
        migrate.upgrade(url)
    database = Database(url)
    try:
        return demo_exists(database)
    finally:
        database.dispose()


@contextlib.contextmanager
def bench_database(database_url: str | None, *, scale: float) -> Iterator[tuple[str, str]]:
    """(url, how it was chosen): the given database, the local demo, or a temporary seeded one."""
    if database_url:
        if not _has_demo(database_url):
            raise RuntimeError("that database has no demo merchant (or is not migrated); run `siyu seed-demo` on it")
        yield database_url, "given"
        return
    local = f"sqlite:///{DEMO_DB.resolve()}"
    if DEMO_DB.exists() and _has_demo(local):
        yield local, "demo"
        return
    from siyu import migrate
    from siyu.db import Database
    from siyu.demo import seed_demo

    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        database = Database(url)
        try:
            seed_demo(database, scale=scale)
        finally:
            database.dispose()
        yield url, f"temporary demo at scale {scale}"


def run(*, requests: int = 2000, concurrency: int = 16, workers: int = 1, database_url: str | None = None,
        scale: float = 0.2) -> dict[str, Any]:
    """Start a server, measure every endpoint found, return the report."""
    with bench_database(database_url, scale=scale) as (url, source), running_server(url, workers=workers) as base:
        found, skipped = endpoints(base)
        results = {name: measure(base, path, requests=requests, concurrency=concurrency, headers=headers)
                   for name, (path, headers) in found.items()}
    return {
        "bench": "api",
        "database": source,
        "dialect": url.split(":", 1)[0].split("+", 1)[0],
        "server_workers": workers,
        "requests_per_endpoint": requests,
        "concurrency": concurrency,
        "endpoints": results,
        "skipped": skipped,
    }
