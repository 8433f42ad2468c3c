"""`siyu bench checkout` end to end with a few buyers for a couple of seconds on SQLite: the shape of
the report and the correctness checks (numbers are not asserted, only that nothing was oversold,
lost or paid twice)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from siyu import cli
from siyu.bench import checkout as bench

KEYS = {"bench", "mode", "database", "database_source", "merchant", "workers", "server_layout", "events", "max_inflight_per_server", "buyers", "duration_s",
        "checkouts_limit", "stock", "skus", "seconds", "selling_seconds", "sold_out_after_s", "paid_checkouts",
        "paid_checkouts_per_s", "orders_created", "latency", "out_of_stock", "errors", "login_failures", "cpu",
        "correctness", "per_checkout_round_trips", "pgbench", "ratio_to_pgbench"}
LATENCY_KEYS = {"count", "p50_ms", "p95_ms", "p99_ms", "max_ms"}


def _run(*args: str) -> dict:
    result = CliRunner().invoke(cli.app, ["bench", "checkout", "--workers", "1", "--skus", "12", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _correct(report: dict) -> None:
    c = report["correctness"]
    assert c["oversold_units"] == 0
    assert c["lost_orders"] == 0
    assert c["double_paid_orders"] == 0
    assert c["stock_ledger_mismatches"] == 0
    assert c["stock_not_conserved_skus"] == 0
    assert c["payments_sum_equals_paid_orders"] is True
    assert report["errors"] == {} and report["login_failures"] == 0


def test_flash_sale_sells_exactly_the_stock_and_no_more(tmp_path) -> None:
    # given 3 buyers racing for 8 units on a temporary SQLite database
    report = _run("--mode", "flash", "--buyers", "3", "--duration", "8", "--stock", "8",
                  "--output", str(tmp_path / "flash.json"))

    assert set(report) == KEYS
    assert (report["bench"], report["mode"], report["database"], report["buyers"]) == ("checkout", "flash", "sqlite", 3)
    assert report["max_inflight_per_server"] == 4  # Settings.max_inflight's default
    assert report["events"] == "inline"
    assert set(report["latency"]) == {"checkout", "create", "pay", "confirm"}
    for numbers in report["latency"].values():
        assert set(numbers) == LATENCY_KEYS
        assert numbers["p50_ms"] <= numbers["p95_ms"] <= numbers["p99_ms"] <= numbers["max_ms"]
    # then exactly the stock was sold and paid, and late buyers were told it was out of stock
    assert report["paid_checkouts"] == 8
    assert report["sold_out_after_s"] is not None and report["out_of_stock"]["answers"] > 0
    assert report["correctness"]["hot_sku"] == {"initial_stock": 8, "stock_left": 0, "paid_units": 8,
                                                "reserved_units": 8}
    _correct(report)
    assert report["pgbench"] == {"skipped": "pgbench runs on PostgreSQL only"}
    assert report["ratio_to_pgbench"] is None
    # the traced checkout counts the database round trips of each step
    trips = report["per_checkout_round_trips"]
    assert {"create", "pay", "confirm", "total"} <= set(trips)
    assert trips["create"]["status"] == 201 and trips["total"]["statements"] > 0 and trips["total"]["commits"] >= 3
    assert json.loads((tmp_path / "flash.json").read_text()) == report


def test_spread_mode_stops_after_the_asked_checkouts() -> None:
    report = _run("--mode", "spread", "--buyers", "2", "--duration", "30", "--checkouts", "6")

    assert report["mode"] == "spread" and report["skus"] == 12 and report["stock"] is None
    assert 6 <= report["paid_checkouts"] <= 7  # the buyer in flight finishes its checkout
    assert report["out_of_stock"]["answers"] == 0 and report["sold_out_after_s"] is None
    _correct(report)


def test_events_in_the_worker_are_all_handled_after_the_sale(monkeypatch: pytest.MonkeyPatch) -> None:
    # given the servers queue the events for one `siyu worker` (a SQLite queue file: no Redis here)
    monkeypatch.delenv("SIYU_REDIS_URL", raising=False)
    report = _run("--mode", "flash", "--buyers", "2", "--duration", "20", "--stock", "5", "--events", "worker")

    # then the sale sold the stock, and the worker ran every handler of every event it emitted
    assert report["paid_checkouts"] == 5
    _correct(report)
    events = report["events"]
    assert (events["mode"], events["queue"], events["pending_after_drain"]) == ("worker", "sqlite file", 0)
    assert events["backlog_at_sale_end"] >= 0 and events["drain_seconds"] >= 0
    assert report["cpu"]["worker_s"] is not None


def test_an_unknown_events_mode_is_refused() -> None:
    result = CliRunner().invoke(cli.app, ["bench", "checkout", "--events", "kafka"])
    assert result.exit_code == 1
    assert "--events must be one of" in result.output


def test_an_unknown_mode_is_refused() -> None:
    result = CliRunner().invoke(cli.app, ["bench", "checkout", "--mode", "chaos"])
    assert result.exit_code == 1
    assert "--mode must be one of" in result.output


def test_pgbench_is_skipped_on_sqlite() -> None:
    assert bench.pgbench("sqlite:///x.db", clients=2, seconds=1) == {"skipped": "pgbench runs on PostgreSQL only"}


@pytest.mark.parametrize("mode", ["flash"])
def test_check_counts_an_order_the_database_does_not_have_as_lost(mode: str, tmp_path) -> None:
    # given a prepared bench merchant and a client that believes in an order nobody stored
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    setup = bench.prepare(url, stock=5, skus=2)

    result = bench.check(setup, created=[987654321], paid=[(987654321, 1)])

    assert result["lost_orders"] == 2  # missing, and "paid" but not paid
    assert result["oversold_units"] == 0 and result["double_paid_orders"] == 0


CAMPAIGN_AREAS = ("flash_sales", "team_buys", "bargains", "ladders")


def _in_process(*args: str) -> dict:
    result = CliRunner().invoke(cli.app, ["bench", "checkout", "--in-process", "3", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_in_process_mode_reports_cpu_and_statements_per_step_and_per_handler() -> None:
    # when 3 checkouts run in-process, twice, on a temporary SQLite database
    report = _in_process("--runs", "2")

    # then every checkout was paid and each figure is there, per run and as medians
    assert (report["bench"], report["database"], report["checkouts"], report["runs"]) == (
        "checkout-in-process", "sqlite", 3, 2)
    assert report["errors"] == {} and len(report["cpu_ms_per_checkout_by_run"]) == 2
    median = report["median"]
    assert median["cpu_ms_per_checkout"] > 0
    assert set(median["steps"]) == {"create", "pay", "confirm"}
    for step in median["steps"].values():
        assert step["cpu_ms"] > 0 and step["statements"] > 0 and step["commits"] >= 1
    # each paid order's event ran once; its handlers are timed one by one
    paid = median["events"]["order.paid"]
    assert paid["runs_per_checkout"] == 1 and paid["statements"] > 0
    assert paid["outside_handlers_cpu_ms"] == pytest.approx(
        paid["cpu_ms"] - sum(h["cpu_ms"] for h in paid["handlers"].values()), abs=0.01)
    # an order of no campaign: the campaign areas' reactions (and membership's) send nothing
    for area in CAMPAIGN_AREAS:
        assert paid["handlers"][f"siyu.promotions.handlers.{area}.on_order_paid"]["statements"] == 0
    assert paid["handlers"]["siyu.membership.handlers.members.on_order_paid"]["statements"] == 0
    # and the two conversion reactions share one read (the buyer met no payment offer and no pop-up)
    assert sum(paid["handlers"][f"siyu.promotions.handlers.{area}.on_order_paid"]["statements"]
               for area in ("payment_offers", "popups")) == 1


def test_in_process_flash_sale_mode_only_the_flash_sale_reacts() -> None:
    report = _in_process("--runs", "1", "--mode", "flash_sale")

    assert report["mode"] == "flash_sale" and report["errors"] == {}
    handlers = report["median"]["events"]["order.paid"]["handlers"]
    assert handlers["siyu.promotions.handlers.flash_sales.on_order_paid"]["statements"] >= 1
    for area in ("team_buys", "bargains", "ladders"):
        assert handlers[f"siyu.promotions.handlers.{area}.on_order_paid"]["statements"] == 0


def test_in_process_mode_refuses_spread() -> None:
    result = CliRunner().invoke(cli.app, ["bench", "checkout", "--in-process", "3", "--mode", "spread"])
    assert result.exit_code == 1
    assert "--in-process runs --mode flash or flash_sale" in result.output
