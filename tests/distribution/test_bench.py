"""`siyu bench commissions` end to end with a handful of orders (numbers are not asserted, only the shape
and the checks the bench makes itself)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from siyu import cli


def test_bench_commissions_prints_a_json_report() -> None:
    result = CliRunner().invoke(cli.app, ["bench", "commissions", "--orders", "30", "--distributors", "20"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["bench"], report["orders"], report["distributors"], report["levels"]) == ("commissions", 30, 20, 2)
    assert report["commission_rows"] > 30  # two levels, one to three lines per order
    for phase in ("accrue", "settle", "total"):
        assert set(report[phase]) >= {"seconds", "orders_per_s"}
    assert report["checks"]["ledger_balanced"] is True
    assert report["checks"]["all_settled"] is True and report["checks"]["rows_left_pending"] == 0
