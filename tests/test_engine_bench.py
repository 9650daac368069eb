"""`benchmarks/engine_bench.py --tiny`: the suite against the simulated engine, both schedules."""

import json


def test_the_engine_benchmark_runs_tiny_and_both_schedules_give_the_same_results(tmp_path):
    from benchmarks import engine_bench

    assert engine_bench.main(["--tiny", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "engine_bench.json").read_text())
    assert [r["schedule"] for r in rows] == ["async", "lockstep"]
    for row in rows:
        assert row["generated_tokens"] >= row["samples"] * row["steps"] * 40  # every reply decoded
        assert 0 < row["fraction_of_capacity"] <= 1.05 and row["trace"]
        assert max(r for _, r, _ in row["trace"]) <= row["in_flight"]
    assert rows[0]["results"] == rows[1]["results"]  # per-request seeds: the schedule changes no result
    assert (tmp_path / "engine_bench.png").stat().st_size > 0
