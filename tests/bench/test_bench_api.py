"""`siyu bench api` end to end with a handful of requests (numbers are not asserted, only the shape)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from siyu import cli
from siyu.bench import api as bench


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench._percentile(values, 50) == 50.0
    assert bench._percentile(values, 95) == 95.0
    assert bench._percentile(values, 99) == 99.0
    assert bench._percentile([7.0], 99) == 7.0
    assert bench._percentile([], 50) == 0.0


def test_bench_api_prints_a_json_report(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # given no demo database in the working directory: the bench seeds a small temporary one
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli.app, ["bench", "api", "--requests", "6", "--concurrency", "2", "--scale", "0.02"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["bench"] == "api"
    assert report["database"] == "temporary demo at scale 0.02"
    assert report["requests_per_endpoint"] == 6 and report["concurrency"] == 2
    assert "healthz" in report["endpoints"]
    for name, numbers in report["endpoints"].items():
        assert set(numbers) == {"path", "requests", "errors", "seconds", "requests_per_s", "p50_ms", "p95_ms",
                                "p99_ms", "max_ms"}, name
        assert numbers["requests"] == 6 and numbers["errors"] == 0, name
        assert numbers["p50_ms"] <= numbers["p95_ms"] <= numbers["p99_ms"] <= numbers["max_ms"]
    assert set(report["endpoints"]) | set(report["skipped"]) == {"healthz", "shop_products", "shop_product_detail",
                                                                 "admin_customers"}
    assert not (tmp_path / "siyu-demo.db").exists()
