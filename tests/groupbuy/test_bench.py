"""`siyu bench nearest-points` runs end to end on a small scale and agrees with brute force."""

from __future__ import annotations

from siyu.bench import nearest_points


def test_bench_nearest_points_small() -> None:
    report = nearest_points.run(points=400, queries=30, radius_m=5000)
    assert (report["points"], report["queries"], report["latency"]["count"]) == (400, 30, 30)
    assert report["queries_per_second"] > 0
    assert report["brute_force"]["same_answer"] == "30/30"
