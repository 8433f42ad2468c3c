"""The `siyu` command: serve, migrate, seed and run the demo, the worker, ticks and benchmarks.

The only module that prints. `--database-url` sets SIYU_DATABASE_URL in the environment, so uvicorn
workers and the huey consumer (other processes) use the same database.

Schema policy of `serve`: an SQLite database (the embedded default) is migrated automatically at
start-up; a PostgreSQL database that is behind is refused with a message saying to run
`siyu migrate` (production upgrades are a deliberate step, run once, not by every app process).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from siyu.analytics import cli as analytics_cli
from siyu.core.demo import DEMO_PASSWORD, DEMO_SLUG

app = typer.Typer(
    name="siyu",
    help="siyu (私域): a self-hosted social-retail platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Measure speed; prints JSON.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(analytics_cli.app, name="analytics")

DEMO_DATABASE_URL = "sqlite:///./siyu-demo.db"

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL; default: SIYU_DATABASE_URL, else sqlite:///./siyu.db."),
]
Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")]
Workers = Annotated[int, typer.Option(min=1, max=64, help="Server processes.")]


def _use_database_url(database_url: str | None) -> str:
    """Make the URL the process's (and its children's) database and return it."""
    from siyu.config import get_settings, reset_settings

    if database_url:
        os.environ["SIYU_DATABASE_URL"] = database_url
    reset_settings()
    return get_settings().database_url


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for in-memory)."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def _ensure_schema(url: str) -> None:
    from siyu import migrate

    if _is_sqlite(url):
        migrate.upgrade(url)
        return
    try:
        current = migrate.current_revision(url)
    except Exception as exc:  # an unreachable server: say so, not a traceback
        _fail(f"Cannot reach the database: {exc}")
    head = migrate.head_revision()
    if current != head:
        _fail(f"The database schema is at {current or 'nothing'}, the code needs {head}. "
              "Run `siyu migrate` first (with the same --database-url).")


def _serve(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run("siyu.app:create_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=True, log_level="info")


def _seed(url: str, scale: float) -> None:
    from siyu.db import Database
    from siyu.demo import seed_demo

    database = Database(url)
    try:
        started = time.perf_counter()
        ctx = seed_demo(database, scale=scale)
        took = time.perf_counter() - started
    finally:
        database.dispose()
    typer.echo(f"Demo merchant {DEMO_SLUG!r} built in {took:.1f} s (scale {scale}, "
               f"{len(ctx.store_ids)} stores, {len(ctx.guide_ids)} guides).")


def _reset(url: str) -> None:
    from siyu import migrate

    path = _sqlite_path(url) if _is_sqlite(url) else None
    if path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        typer.echo(f"Removed {path}.")
    else:
        migrate.downgrade(url, "base")
        typer.echo("Dropped every table the migrations made.")


def _demo_exists(url: str) -> bool:
    from siyu.db import Database
    from siyu.demo import demo_exists

    database = Database(url)
    try:
        return demo_exists(database)
    finally:
        database.dispose()


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = 1, database_url: DatabaseUrl = None) -> None:
    """Serve the API, the console and the H5 shop with uvicorn (SQLite is migrated automatically)."""
    url = _use_database_url(database_url)
    _ensure_schema(url)
    _serve(host, port, workers)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Upgrade the database schema to the latest migration."""
    from siyu import migrate as migrations

    url = _use_database_url(database_url)
    migrations.upgrade(url)
    typer.echo(f"Database is at revision {migrations.current_revision(url)}.")


@app.command("seed-demo")
def seed_demo(
    database_url: DatabaseUrl = None,
    scale: Annotated[float, typer.Option(min=0.001, max=10, help="1.0 builds the full demo; less is faster.")] = 1.0,
    reset: Annotated[bool, typer.Option(help="Start from an empty database (deletes an SQLite file).")] = False,
) -> None:
    """Migrate, then build the deterministic demo merchant and exit."""
    from siyu import migrate as migrations

    url = _use_database_url(database_url)
    if reset:
        _reset(url)
    migrations.upgrade(url)
    if _demo_exists(url):
        _fail(f"The database already holds the demo merchant {DEMO_SLUG!r}; use --reset to rebuild it.")
    _seed(url, scale)


@app.command()
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = 1,
    reset: Annotated[bool, typer.Option(help="Rebuild ./siyu-demo.db from scratch.")] = False,
) -> None:
    """Build the demo in ./siyu-demo.db when missing, then serve it with the demo logins enabled."""
    from siyu import migrate as migrations

    os.environ["SIYU_DEV_LOGIN"] = "1"
    url = _use_database_url(DEMO_DATABASE_URL)
    if reset:
        _reset(url)
    migrations.upgrade(url)
    if _demo_exists(url):
        typer.echo("Using the existing demo in ./siyu-demo.db (--reset rebuilds it).")
    else:
        _seed(url, 1.0)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo("")
    typer.echo(f"  Console:  http://{shown}:{port}/console/")
    typer.echo(f"  Shop:     http://{shown}:{port}/shop/{DEMO_SLUG}/")
    typer.echo(f"  API docs: http://{shown}:{port}/docs")
    typer.echo(f"  Logins:   admin / {DEMO_PASSWORD} (brand admin), guide1 / {DEMO_PASSWORD} (guide)")
    typer.echo("")
    _serve(host, port, workers)


@app.command()
def worker(
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker threads.")] = 2,
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option(help="debug, info (every task run is logged), warning or error.")] = "info",
) -> None:
    """Run the huey consumer: events (SIYU_EVENTS_MODE=huey) and the every-minute tick."""
    import logging

    level = getattr(logging, log_level.upper(), None)
    if log_level.lower() not in ("debug", "info", "warning", "error") or not isinstance(level, int):
        _fail("--log-level must be one of: debug, info, warning, error")

    from siyu.core.events import load_handlers
    from siyu.core.jobs import load_jobs
    from siyu.db import import_all_models

    url = _use_database_url(database_url)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import_all_models()
    load_handlers()
    load_jobs()
    from siyu.tasks import huey

    typer.echo(f"huey consumer on {type(huey).__name__}, database {url.split('@')[-1]}")
    huey.create_consumer(workers=workers, periodic=True, worker_type="thread").run()


@app.command()
def tick(database_url: DatabaseUrl = None) -> None:
    """Run every registered tick once and print what each did as JSON."""
    from siyu.core import clock, jobs
    from siyu.core.events import load_handlers
    from siyu.db import configure, import_all_models

    url = _use_database_url(database_url)
    configure(url)
    import_all_models()
    load_handlers()
    typer.echo(json.dumps(jobs.run_all(clock.now()), default=str, ensure_ascii=False, indent=2, sort_keys=True))


@app.command(hidden=True)
def makemigration(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
    rev_id: Annotated[str | None, typer.Option("--rev-id", help="A fixed revision id, e.g. 0002.")] = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="Compare against this database (default: a scratch SQLite at head).")] = None,
) -> None:
    """Autogenerate a migration from the difference between the models and the migrations."""
    from siyu import migrate as migrations

    path = migrations.make_revision(database_url, message, rev_id=rev_id)
    typer.echo(f"Wrote {path}")


@bench_app.command("api")
def bench_api(
    requests: Annotated[int, typer.Option(min=1, max=1_000_000, help="Requests per endpoint.")] = 2000,
    concurrency: Annotated[int, typer.Option(min=1, max=512, help="Client threads.")] = 16,
    workers: Workers = 1,
    database_url: DatabaseUrl = None,
    scale: Annotated[float, typer.Option(min=0.001, max=10, help="Demo scale when a temporary database is built.")] = 0.2,
) -> None:
    """Start a server on a free port and measure read endpoints: requests/s and p50/p95/p99 latency."""
    from siyu.bench import api as bench

    try:
        report: dict[str, Any] = bench.run(requests=requests, concurrency=concurrency, workers=workers,
                                           database_url=database_url, scale=scale)
    except RuntimeError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2))


@bench_app.command("nearest-points")
def bench_nearest_points(
    points: Annotated[int, typer.Option(min=1, max=1_000_000, help="Active pickup points to search among.")] = 10_000,
    queries: Annotated[int, typer.Option(min=1, max=1_000_000, help="Searches from random locations.")] = 2000,
    radius_m: Annotated[int, typer.Option(min=100, max=50_000, help="Search radius in metres.")] = 3000,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="A migrated database to add the bench merchant to; default: a temporary SQLite file.")] = None,
) -> None:
    """Nearest-pickup-point searches per second (bounding box on indexed lat/lng, then haversine),
    checked against brute force on a sample."""
    from siyu.bench import nearest_points as bench

    typer.echo(json.dumps(bench.run(points=points, queries=queries, radius_m=radius_m, database_url=database_url),
                          ensure_ascii=False, indent=2))


@bench_app.command("checkout")
def bench_checkout(
    mode: Annotated[str, typer.Option(help="flash: everyone buys one hot SKU; spread: random SKUs among many; "
                                                 "flash_sale: a real flash-sale campaign on the hot SKU.")] = "flash",
    buyers: Annotated[int, typer.Option(min=1, max=1024, help="Concurrent simulated buyers (client threads).")] = 64,
    workers: Workers = 2,
    duration: Annotated[float, typer.Option(min=0.5, max=3600, help="Seconds to run (a sold-out flash sale ends early).")] = 10.0,
    checkouts: Annotated[int | None, typer.Option(min=1, help="Stop after this many paid checkouts.")] = None,
    stock: Annotated[int, typer.Option(min=0, max=10_000_000, help="Units of the hot SKU (flash).")] = 1000,
    skus: Annotated[int, typer.Option(min=1, max=10_000, help="Normal SKUs (spread).")] = 200,
    database_url: DatabaseUrl = None,
    pgbench_seconds: Annotated[int, typer.Option(min=0, max=600, help="pgbench -T on PostgreSQL; 0 skips it.")] = 5,
    profile: Annotated[str | None, typer.Option(help="Write a py-spy profile of the server here (.svg, .json, .txt).")] = None,
    profile_gil: Annotated[bool, typer.Option(help="Profile only threads holding the GIL (Python CPU).")] = False,
    events: Annotated[str, typer.Option(help="inline: event handlers run in the servers after each commit; worker: "
                                             "the servers queue them for one `siyu worker` process.")] = "inline",
    event_threads: Annotated[int, typer.Option(min=1, max=64, help="--events worker: the worker's threads.")] = 2,
    event_nice: Annotated[int, typer.Option(min=0, max=19, help="--events worker: its niceness.")] = 10,
    output: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    in_process: Annotated[int | None, typer.Option(
        min=1, max=100_000, help="Instead: this many sequential checkouts through the app in this process "
                                 "(no server); CPU per checkout, per step and per event handler.")] = None,
    runs: Annotated[int, typer.Option(min=1, max=20, help="--in-process: repeat this often; medians.")] = 3,
) -> None:
    """Concurrent buyers create, pay and sandbox-confirm orders over HTTP against a fresh bench
    merchant; paid checkouts/s, latency, and oversold/lost/double-paid checks (SQLite by default,
    PostgreSQL with --database-url, where pgbench gives the raw database limit)."""
    from siyu.bench import checkout as bench

    if mode not in bench.MODES:
        _fail(f"--mode must be one of: {', '.join(bench.MODES)}")
    if events not in bench.EVENTS:
        _fail(f"--events must be one of: {', '.join(bench.EVENTS)}")
    try:
        if in_process is not None:
            if mode == "spread":
                _fail("--in-process runs --mode flash or flash_sale")
            report = bench.run_in_process(checkouts=in_process, runs=runs, mode=mode, database_url=database_url)
        else:
            report = bench.run(mode=mode, buyers=buyers, workers=workers, duration=duration, checkouts=checkouts,
                               stock=stock, skus=skus, database_url=database_url,
                               pgbench_seconds=pgbench_seconds, profile=profile, profile_gil=profile_gil,
                               events=events, event_threads=event_threads, event_nice=event_nice)
    except RuntimeError as exc:
        _fail(str(exc))
    text = json.dumps(report, ensure_ascii=False, indent=2)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


@bench_app.command("analytics")
def bench_analytics(
    customers: Annotated[int, typer.Option(min=10, max=10_000_000, help="Customers of the bench merchant.")] = 1_000_000,
    orders: Annotated[int, typer.Option(min=10, max=100_000_000, help="Paid orders over the last year.")] = 10_000_000,
    days: Annotated[int, typer.Option(min=1, max=366, help="The period of the timed views (Shanghai days).")] = 30,
    repeat: Annotated[int, typer.Option(min=1, max=20, help="Time each view this many times; the best is kept.")] = 1,
    database_url: DatabaseUrl = None,
    output: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    keep: Annotated[Path | None, typer.Option(
        help="SQLite: generate into this file and keep it (with --reuse: the file to time).")] = None,
    reuse: Annotated[bool, typer.Option(
        help="Time a bench merchant generated before (--keep file or --database-url) instead of generating.")] = False,
    merchant_id: Annotated[int | None, typer.Option(help="With --reuse: this bench merchant, not the latest.")] = None,
    generate_only: Annotated[bool, typer.Option(help="Generate (and keep) the data; time nothing.")] = False,
    skip_naive: Annotated[bool, typer.Option(help="Do not time the naive SQL.")] = False,
    views: Annotated[str | None, typer.Option(help="Time only these views, comma-separated (e.g. rfm,funnel).")] = None,
    rebuild: Annotated[bool, typer.Option(
        help="With --reuse: --no-rebuild keeps the aggregates an earlier run rebuilt (views only).")] = True,
    variants: Annotated[str | None, typer.Option(
        help="Also time each view narrowed: these variants, comma-separated (default all: store, guide, as_guide, "
             "group, channel, campaign, past; 'none' for none).")] = None,
) -> None:
    """Generate a deterministic merchant (COPY on PostgreSQL, executemany on SQLite) and time every
    analytics view next to the same computation as plain SQL (a temporary SQLite file by default).
    Generate once with --keep FILE (SQLite) or --database-url, then re-time with --reuse."""
    from siyu.bench import analytics as bench

    names = tuple(v.strip() for v in views.split(",") if v.strip()) if views else bench.VIEWS
    narrowed = bench.VARIANTS if variants is None else tuple(
        v.strip() for v in variants.split(",") if v.strip() and v.strip() != "none")
    try:
        text = bench.dumps(bench.run(customers=customers, orders=orders, database_url=database_url, days=days,
                                     repeat=repeat, keep=keep, reuse=reuse, merchant_id=merchant_id,
                                     generate_only=generate_only, skip_naive=skip_naive, views=names,
                                     rebuild=rebuild, variants=narrowed))
    except RuntimeError as exc:
        _fail(str(exc))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


@bench_app.command("commissions")
def bench_commissions(
    orders: Annotated[int, typer.Option(min=1, max=10_000_000, help="Paid orders to compute and settle.")] = 100_000,
    distributors: Annotated[int, typer.Option(min=10, max=1_000_000, help="Distributors, in two-level chains.")] = 1000,
    database_url: DatabaseUrl = None,
) -> None:
    """Commission computation and settlement throughput for two-level chains (orders per second)."""
    from siyu.bench import commissions as bench

    typer.echo(json.dumps(bench.run(orders=orders, distributors=distributors, database_url=database_url),
                          ensure_ascii=False, indent=2))

if __name__ == "__main__":
    app()
