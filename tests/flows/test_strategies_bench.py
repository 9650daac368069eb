"""`benchmarks/strategies.py` on the fake models: the README's strategies comparison end to end
(a sweep over strategy x seed at one budget, the rescoring self-check, the pooled table, plots)."""

from __future__ import annotations

import pandas as pd
import yaml

from cli.main import main


def test_the_strategies_benchmark_reads_the_sweep_and_pools_the_seeds(flow_config, tmp_path):
    from benchmarks import strategies

    path, raw = flow_config("strategies.yaml", generator={"backend": "fake", "model": "fake", "max_new_tokens": 30},
                            loop={"steps": 8, "keep": 4, "requested": 5, "seed": 0, "budget": {"generated_tokens": 60}})
    raw["sweep"] = {"loop.strategy": ["mils", "best_of_n", "retrieval"], "loop.seed": [0, 1]}
    path.write_text(yaml.safe_dump(raw))
    assert main(["sweep", str(path)]) == 0
    assert strategies.main(["--config", str(path), "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "strategies.csv")
    assert sorted(zip(table["strategy"], table["seed"])) == sorted(
        (s, seed) for s in ("mils", "best_of_n", "retrieval") for seed in (0, 1))
    assert (table["self_check_max_diff"] < 1e-5).all()  # the run's own scorer gives the stored scores again
    spend = table.groupby("strategy")["tokens_per_sample"]
    assert spend.max()["retrieval"] == 0
    for strategy in ("mils", "best_of_n"):  # the budget, within one reply
        assert 60 <= spend.min()[strategy] and spend.max()[strategy] < 60 + 40
    assert (table["steps"][table["strategy"] != "retrieval"] < 8).all()  # the budget stopped them, not `steps`
    pooled = pd.read_csv(tmp_path / "out" / "pooled.csv")
    assert list(zip(pooled["A"], pooled["B"])) == [("retrieval", "mils"), ("retrieval", "best_of_n"),
                                                   ("best_of_n", "mils")]
    assert (pooled["pairs"] == table[table["strategy"] == "mils"]["samples"].sum()).all()  # every (seed, sample)
    assert (pooled["losses"][:2] == 0).all()  # the bank's best is kept: retrieval never beats a strategy
    for name in ("by_step.png", "frontier.csv", "frontier.png"):
        assert (tmp_path / "out" / name).is_file()
