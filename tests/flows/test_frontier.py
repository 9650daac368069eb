"""Compute-matched strategies end to end: MILS, best-of-N at MILS's own spend, retrieval; a held-out
rescoring that never calls the LLM; the frontier over the three."""

from __future__ import annotations

import pandas as pd
import pytest

from cli.main import main
from evaluation.frontier import pareto
from flows.benchmark import run_benchmark
from mils.config.run_config import ScorerConfig, load_config
from mils.errors import InputError


def test_pareto_marks_on_hand_made_points():
    cost, quality = [1, 2, 3, 4, 2], [0.5, 0.7, 0.6, 0.9, 0.7]
    assert pareto(cost, quality) == [True, True, False, True, True]  # (3, 0.6) is beaten by (2, 0.7)
    assert pareto([1, 2], [0.3, 0.1], higher_is_better=False) == [True, True]
    assert pareto([1, 1], [0.5, 0.5]) == [True, True]  # equal points do not beat each other


def test_strategies_at_matched_cost_a_held_out_judge_and_the_frontier(flow_config, tmp_path, monkeypatch, capsys):
    small = {"backend": "fake", "model": "fake", "max_new_tokens": 30}  # a fake reply is ~30 words
    path, _ = flow_config("mils.yaml", generator=small)
    mils = run_benchmark(load_config(path))
    matched, _ = flow_config("bon.yaml", generator=small, loop={"steps": 30, "keep": 4, "requested": 5, "seed": 5,
                                               "strategy": "best_of_n",
                                               "match": {"run": str(mils.results_dir), "by": "generated_tokens"}})
    bon_config = load_config(matched)
    assert bon_config.loop.budget.generated_tokens == round(mils.cost["generated_tokens"] / len(mils.samples))
    bon = run_benchmark(bon_config)
    retrieval, _ = flow_config("ret.yaml", generator=small, loop={"steps": 3, "keep": 4, "requested": 5, "seed": 5,
                                                 "strategy": "retrieval"})
    ret = run_benchmark(load_config(retrieval))
    assert not ret.cost["generated_tokens"] > 0 and all(len(s.by_step) == 1 for s in ret.samples)  # nothing asked
    per_sample = bon.cost["generated_tokens"] / len(bon.samples)
    assert abs(per_sample - bon_config.loop.budget.generated_tokens) < 40  # within about one reply of the budget

    def no_llm(*args, **kwargs):
        raise AssertionError("rescoring called the generator")
    monkeypatch.setattr("mils.components.build.build_generator", no_llm)
    from evaluation.rescore import rescore

    table, curve, out = rescore(mils.results_dir, ScorerConfig(name="fake_bow"))  # the run's own scorer
    steps = table[table["step"] != "kept"]
    assert (steps["held_out"] - steps["optimised"]).abs().max() < 1e-5  # a self-check: the stored scores again
    assert list(curve.index) == [0, 1, 2, 3] and "CIDEr" in curve and (out / "held_out_vs_step.png").is_file()
    with pytest.raises(InputError, match="cannot score this run's image_captioning sample"):
        rescore(mils.results_dir, ScorerConfig(name="concept"))  # an image scorer on text samples

    # a folder from elsewhere names a tracking server and a plugin: neither is used (issue 37, item 4)
    import json

    config_file = mils.results_dir / "config.json"
    planted = {**json.loads(config_file.read_text()), "plugins": ["mils_planted_plugin"]}
    planted["tracking"] = {**planted["tracking"], "uri": f"sqlite:///{tmp_path}/theirs.db"}
    config_file.write_text(json.dumps(planted))
    (tmp_path / "mils_planted_plugin.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rescore(mils.results_dir, ScorerConfig(name="fake_bow"))
    assert not (tmp_path / "imported").exists()
    assert main(["frontier", str(mils.results_dir), str(bon.results_dir), str(ret.results_dir),
                 "--out", str(tmp_path / "frontier"), "--tracking-uri", mils.config.tracking.uri]) == 0
    assert not (tmp_path / "theirs.db").exists()
    front = pd.read_csv(tmp_path / "frontier" / "frontier.csv")
    assert list(front["strategy"]) == ["mils", "best_of_n", "retrieval"]
    assert front["held_out"].notna().iloc[0] and "CIDEr" in front
    assert front["pareto"].iloc[2]  # retrieval costs nothing: nothing beats it on cost
    assert (tmp_path / "frontier" / "frontier.png").is_file()
    import mlflow

    run_id = capsys.readouterr().out.rsplit("MLflow run ", 1)[1].strip()
    logged = mlflow.MlflowClient(mils.config.tracking.uri).get_run(run_id)
    assert logged.data.tags["mils.kind"] == "frontier"
    assert any("strategy_retrieval" in k and k.endswith("/optimised") for k in logged.data.metrics)  # named by setting
    with pytest.raises(InputError, match="needs two runs or more"):
        from evaluation.frontier import frontier

        frontier([mils.results_dir], tmp_path / "f2")


def test_a_held_out_curve_counts_a_sample_that_stopped_early_at_its_last_step(flow_config):
    """With a budget or early stopping samples stop at different steps; the by-step mean is over all
    of them (it used to be over the samples still running, and fell when a good one stopped)."""
    import json

    import numpy as np

    from evaluation.rescore import rescore
    from mils.storage.results import ResultStore

    path, _ = flow_config("mils.yaml", generator={"backend": "fake", "model": "fake", "max_new_tokens": 30})
    run = run_benchmark(load_config(path))
    one = next((run.results_dir / "samples").glob("*.json"))
    store = ResultStore(run.results_dir, scorer=json.loads(one.read_text())["scorer"])
    results = sorted(store.results(), key=lambda r: -r.score)
    store.write(results[0].truncated(1))  # the best sample stopped after step 1
    _, curve, _ = rescore(run.results_dir, ScorerConfig(name="fake_bow"))
    finals = [r.score for r in store.results()]
    assert list(curve.index) == [0, 1, 2, 3]
    assert curve["optimised"].iloc[-1] == pytest.approx(np.mean(finals))
    assert curve["optimised"].is_monotonic_increasing  # the best-ever is kept: the mean never falls


def test_a_frontier_of_runs_over_different_samples_compares_the_common_ones_and_says_so(flow_config, caplog):
    """A 4-sample and a 6-sample run: before, a delta paired over 4 sat beside a mean over 6, silently,
    and the points were labelled by folder hashes."""
    from evaluation.frontier import frontier
    from tests.flows.conftest import TARGETS

    small = {"backend": "fake", "model": "fake", "max_new_tokens": 30}
    few, _ = flow_config("few.yaml", generator=small, dataset={"kind": "fake_text", "args": {"targets": TARGETS[:4]}})
    more, _ = flow_config("more.yaml", generator=small, loop={"steps": 2, "keep": 4, "requested": 5, "seed": 5})
    runs = [run_benchmark(load_config(p)) for p in (few, more)]
    table = frontier([r.results_dir for r in runs], runs[0].results_dir.parent / "frontier")
    assert list(table["common_samples"]) == [4, 4] and list(table["samples"]) == [4, len(TARGETS)]
    common = {s.sample_id: s.score for s in runs[1].samples if s.sample_id in {x.sample_id for x in runs[0].samples}}
    assert table["optimised"].iloc[1] == pytest.approx(sum(common.values()) / 4)  # over the common samples only
    assert any("over the 4 they all have" in r.getMessage() for r in caplog.records)
    assert table["label"].iloc[1].startswith("steps=2") or "steps=2" in table["label"].iloc[1]
    # issue 48, item 1: every column over the shared samples, not each run's own (cost, CIDEr)
    from mils.engine.cost import run_cost
    from mils.storage.results import ResultStore

    every = ResultStore(runs[1].results_dir).results()
    shared = [r for r in every if r.sample_id in common]
    assert table["generated_tokens_per_sample"].iloc[1] == pytest.approx(run_cost(shared, 0.0)["generated_tokens"] / 4)
    assert table["generated_tokens_per_sample"].iloc[1] != pytest.approx(
        run_cost(every, 0.0)["generated_tokens"] / len(TARGETS))
    assert table["CIDEr n"].iloc[0] == 4 and pd.isna(table["CIDEr"].iloc[1])  # no CIDEr of those 4 captions there
    assert all("name=" not in label and "metrics=" not in label for label in table["label"])


def test_a_frontier_reads_the_metrics_a_sweep_folder_computed(flow_config, tmp_path):
    """A sweep variant's folder has no run record; its metrics cache holds the final captions' report."""
    import json

    from evaluation.frontier import frontier

    small = {"backend": "fake", "model": "fake", "max_new_tokens": 30}
    a, _ = flow_config("a.yaml", generator=small)
    b, _ = flow_config("b.yaml", generator=small, loop={"steps": 2, "keep": 4, "requested": 5, "seed": 5})
    runs = [run_benchmark(load_config(p)) for p in (a, b)]
    record = runs[1].results_dir / "run.json"
    recorded = json.loads(record.read_text())["reports"]["final"]["corpus"]["CIDEr"]["value"]
    record.unlink()  # as a sweep variant's folder: no record, only the metrics cache
    table = frontier([r.results_dir for r in runs], tmp_path / "frontier")
    assert table["CIDEr"].iloc[1] == pytest.approx(100 * recorded)


def test_runs_that_differ_in_their_seed_are_one_point_per_setting(flow_config, tmp_path, capsys):
    """Two settings x two seeds: the means over seeds, their spread, and the delta paired on (seed, sample)
    against the first setting's run of the same seed; the terminal, the csv, the plot and MLflow have them."""
    import numpy as np

    from evaluation.frontier import frontier
    from evaluation.frontier_seeds import two_way_interval

    small = {"backend": "fake", "model": "fake", "max_new_tokens": 30}
    runs = {}
    for steps in (1, 2):
        for seed in (0, 1):
            path, _ = flow_config(f"s{steps}-{seed}.yaml", generator=small,
                                  loop={"steps": steps, "keep": 4, "requested": 5, "seed": seed})
            runs[steps, seed] = run_benchmark(load_config(path))
    order = [runs[1, 0], runs[1, 1], runs[2, 0], runs[2, 1]]
    table = frontier([r.results_dir for r in order], tmp_path / "frontier")
    seeds = table.attrs["over_seeds"]
    assert list(seeds["seeds"]) == [2, 2] and list(seeds["setting"]) == ["steps=1", "steps=2"], seeds["setting"]
    assert seeds["optimised"].iloc[1] == pytest.approx(table["optimised"].iloc[2:].mean())
    assert seeds["optimised sd"].iloc[1] == pytest.approx(table["optimised"].iloc[2:].std())
    by_seed = [np.mean([b.score - a.score for a, b in zip(runs[1, s].samples, runs[2, s].samples)]) for s in (0, 1)]
    assert seeds["delta_vs_first"].iloc[1] == pytest.approx(np.mean(by_seed))  # paired on the seed and the sample
    assert seeds["delta_vs_first"].iloc[0] == 0 and seeds["delta_low"].iloc[0] == seeds["delta_high"].iloc[0] == 0
    assert (tmp_path / "frontier" / "frontier_seeds.csv").is_file() and (tmp_path / "frontier" / "frontier_seeds.png").is_file()
    one_seed = frontier([runs[1, 0].results_dir, runs[2, 0].results_dir], tmp_path / "one")
    assert one_seed.attrs["over_seeds"] is None and not (tmp_path / "one" / "frontier_seeds.csv").exists()
    # the interval counts the seed's luck: differences that change only from seed to seed are not certain
    low, high = two_way_interval(np.array([[1.0] * 8, [3.0] * 8]))
    assert low < 2.0 < high and two_way_interval(np.full((2, 8), 2.0)) == (2.0, 2.0)

    assert main(["frontier", *[str(r.results_dir) for r in order], "--out", str(tmp_path / "cli"),
                 "--tracking-uri", f"sqlite:///{tmp_path}/mlruns.db"]) == 0
    printed = capsys.readouterr().out
    assert "over seeds, one point per setting" in printed and "± " in printed
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns.db")
    logged = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`mils.kind` = 'frontier'")
    assert any(c.startswith("metrics.seeds/steps_2/optimised") for c in logged.columns), [c for c in logged.columns if "metrics" in c]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(logged["run_id"].iloc[0])}
    assert {"frontier.csv", "frontier_seeds.csv", "frontier_seeds.png"} <= artifacts
