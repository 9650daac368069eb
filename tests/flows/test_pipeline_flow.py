import json
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from flows.pipeline import pipeline_flow, read_pipeline
from mils.run import model_cache as models
from mils.storage.run_folder import RunFolder
from tests.flows.conftest import TARGETS


def _pipeline_yaml(flow_config, name="pipeline.yaml", **extra):
    path, raw = flow_config(name)
    raw.update({"bank": {"generate": {"per_class": 3, "classes": 6}},
                "sweep": {"loop.keep": [2, 4]}, "judging": {"assignments": 2, "catch": 0.0}, **extra})
    path.write_text(yaml.safe_dump(raw))
    return path, raw


def _artifacts(client, run_id, path=None):
    return {a.path for a in client.list_artifacts(run_id, path)}


def test_pipeline_chains_every_stage_under_one_parent_run(flow_config, load_counts):
    path, raw = _pipeline_yaml(flow_config)
    summary = pipeline_flow(str(path))
    stages = summary.stages
    assert stages["bank"]["generated"] is True
    assert stages["optimise"]["computed"] == len(TARGETS) and stages["optimise"]["failed"] == 1
    assert {"step0", "final"} <= set(stages["optimise"]["metrics"])
    assert stages["sweep"]["variants"] == 2
    # the keep=4 variant IS the base config: it resumes the base run's folder, only keep=2 is new
    assert len(list(Path(raw["output_dir"]).glob("fake-*"))) == 2
    assert stages["judging"]["pairs"] > 0
    batch = Path(stages["judging"]["path"])
    assert (batch / "key.json").is_file() and (batch / "amt_input.csv").is_file()
    key = json.loads((batch / "key.json").read_text())
    assert key["mlflow_run_id"] == summary.parent_run_id  # ingest logs win rates on the pipeline run

    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    parent = client.get_run(summary.parent_run_id)
    assert parent.data.tags["mils.kind"] == "pipeline"
    top = _artifacts(client, parent.info.run_id)
    assert {"bank", "judging", "pipeline.json"} <= top
    assert any(p.endswith(".provenance.json") for p in _artifacts(client, parent.info.run_id, "bank"))
    assert "judging/key.json" in _artifacts(client, parent.info.run_id, "judging")
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    kinds = sorted(c.data.tags["mils.kind"] for c in children)
    assert kinds == ["config", "sweep"]
    sweep = next(c for c in children if c.data.tags["mils.kind"] == "sweep")
    variants = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{sweep.info.run_id}'")
    assert sorted(v.data.params["sweep.loop.keep"] for v in variants) == ["2", "4"]
    # the generated bank, the base run and both sweep variants share one load of each model
    assert load_counts == {"generator": 1, "scorer": 1}


def test_a_second_run_recomputes_nothing(flow_config, load_counts, monkeypatch):
    path, raw = _pipeline_yaml(flow_config)
    first = pipeline_flow(str(path))
    models._MODELS.clear()
    models._RUNNERS.clear()
    loads = dict(load_counts)

    def no_metrics(*args, **kwargs):
        raise AssertionError("metrics were recomputed")

    monkeypatch.setattr(sys.modules["evaluation.caption_metrics"], "caption_metrics", no_metrics)
    second = pipeline_flow(str(path))
    assert load_counts == loads  # no model was loaded again
    stages = second.stages
    assert stages["bank"]["generated"] is False
    assert stages["optimise"]["computed"] == 0 and stages["optimise"]["resumed"] == len(TARGETS)
    assert stages["optimise"]["metrics"] == first.stages["optimise"]["metrics"]
    assert stages["sweep"]["cached"] is True and stages["judging"]["cached"] is True
    assert second.parent_run_id == first.parent_run_id
    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    children = client.search_runs([client.get_run(first.parent_run_id).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{first.parent_run_id}'")
    assert len(children) == 2  # nothing logged twice


def test_fresh_reruns_get_dated_folders_and_follow_the_previous_run(flow_config):
    path, raw = _pipeline_yaml(flow_config, sweep=None, judging=False)
    first = pipeline_flow(str(path), fresh=True)
    second = pipeline_flow(str(path), fresh=True)
    assert first.results_dir != second.results_dir
    assert Path(first.results_dir).parent.parent == Path(raw["output_dir"])
    assert second.stages["optimise"]["computed"] == len(TARGETS)  # recomputed, not resumed
    assert first.follows is None and second.follows == first.parent_run_id
    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    assert client.get_run(second.parent_run_id).data.tags["mils.follows"] == first.parent_run_id
    assert "sweep" not in second.stages and "judging" not in second.stages
    assert second.stages["vs_previous"]["regression"] is False  # the same results: no drop
    assert client.get_run(second.parent_run_id).data.tags["mils.regression"] == "false"


def test_a_significant_drop_against_the_previous_run_is_tagged_a_regression(flow_config):
    from dataclasses import replace

    from mils.storage.results import ResultStore

    path, raw = _pipeline_yaml(flow_config, sweep=None, judging=False)
    first = pipeline_flow(str(path), fresh=True)
    store = ResultStore(first.results_dir)
    for r in store.results():  # make the earlier run perfect: its final captions become the references
        target = TARGETS[int(r.sample_id[1:])]
        store.write(replace(r, history=[*r.history[:-1], replace(r.history[-1], best=target)]))
    second = pipeline_flow(str(path), fresh=True)
    assert second.stages["vs_previous"]["regression"] is True and "CIDEr" in second.stages["vs_previous"]["dropped"]
    tags = mlflow.tracking.MlflowClient(raw["tracking"]["uri"]).get_run(second.parent_run_id).data.tags
    assert tags["mils.regression"] == "true" and "CIDEr" in tags["mils.regression_metrics"]


def test_judging_against_a_named_baseline_and_skipped_when_nothing_differs(flow_config, tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({f"t{i:03d}": "a photo of something" for i in range(len(TARGETS))}))
    path, _ = _pipeline_yaml(flow_config, sweep=None, judging={"against": str(baseline), "catch": 0.0})
    summary = pipeline_flow(str(path))
    key = json.loads((Path(summary.stages["judging"]["path"]) / "key.json").read_text())
    assert {p["sample_id"] for p in key["pairs"].values()} == {f"t{i:03d}" for i in range(len(TARGETS))}

    steps0, _ = _pipeline_yaml(flow_config, "zero.yaml", sweep=None, loop={"steps": 0, "keep": 4, "requested": 5})
    skipped = pipeline_flow(str(steps0)).stages["judging"]  # 0 steps: final == step 0 everywhere
    assert skipped["path"] is None and "nothing to judge" in skipped["skipped"]


def test_bad_pipeline_sections_name_the_file(flow_config):
    path, raw = flow_config("bad.yaml")
    raw["judging"] = ["step0"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="bad.yaml: 'judging'"):
        read_pipeline(path)
    raw["judging"] = {"against": "step0", "assigments": 3}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="assigments"):
        read_pipeline(path)


def test_vlm_plus_mils_is_one_pipeline_config(flow_config, tmp_path):
    """A captioner's output seeds MILS; the pipeline compares the two (paired) and exports the
    VLM vs VLM + MILS judging batch."""
    vlm = tmp_path / "vlm.json"  # a weak captioner: one word of each target
    vlm.write_text(json.dumps({f"t{i:03d}": t.split()[0] for i, t in enumerate(TARGETS)}))
    path, raw = flow_config("enhance.yaml")
    raw.update({"bank": {**raw["bank"], "seed_captions": str(vlm)}, "judging": {"against": str(vlm),
                                                                                "assignments": 2, "catch": 0.0}})
    path.write_text(yaml.safe_dump(raw))
    summary = pipeline_flow(str(path))
    stages = summary.stages
    from mils.storage.results import ResultStore

    bank_size = len(Path(raw["bank"]["path"]).read_text().splitlines())
    results = ResultStore(summary.results_dir).results()
    assert all(r.cost[0].candidates_scored == bank_size + 1 for r in results)  # each seed joined step 0
    assert stages["vs_seed"]["n"] == len(TARGETS) and "CIDEr" in stages["vs_seed"]["delta"]
    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    metrics = client.get_run(summary.parent_run_id).data.metrics
    assert metrics["vs_seed/CIDEr"] == pytest.approx(stages["vs_seed"]["delta"]["CIDEr"], abs=1e-4)
    assert metrics["vs_seed/CIDEr"] > 0  # the loop's captions beat one-word seeds on these references
    batch = json.loads((Path(stages["judging"]["path"]) / "key.json").read_text())
    assert batch["pairs"] and all(p["sample_id"].startswith("t") for p in batch["pairs"].values())
    assert pipeline_flow(str(path)).stages["vs_seed"] == {"cached": True}


def test_a_captioner_then_mils_seeded_by_it_in_one_pipeline(tmp_path, tiny_clip_name):
    """baseline (a tiny BLIP-2) -> its captions seed MILS -> paired comparison -> judging batch vs the VLM."""
    from mils.storage.results import ResultStore
    from tests.tiny_models import tiny_blip2

    bank = tmp_path / "bank.txt"
    bank.write_text("a photo of a cat\na photo of a cup\na rocket on a launch pad\n")
    raw = {"profile": "offline", "name": "vlm-plus-mils", "plugins": ["tests.fakes"],
           "generator": {"backend": "fake", "model": "fake"},
           "scorer": {"name": "open_clip", "options": {"model": tiny_clip_name, "pretrained": None, "device": "cpu"}},
           "bank": {"path": str(bank), "builtin": None}, "loop": {"steps": 1, "keep": 2, "requested": 3},
           "dataset": {"kind": "sample", "args": {"directory": str(tmp_path / "photos")}, "limit": 3},
           "metrics": ["BLEU", "CIDEr"], "output_dir": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache"),
           "tracking": {"uri": f"sqlite:///{tmp_path / 'mlruns.db'}", "experiment": "test"},
           "baseline": {"captioner": "blip2", "options": {"model": str(tiny_blip2(tmp_path / "blip2")),
                                                          "device": "cpu", "max_new_tokens": 6}},
           "judging": {"against": "baseline", "assignments": 2, "catch": 0.0}}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw))
    stages = pipeline_flow(str(path)).stages
    assert stages["baseline"]["done"] == 3 and stages["baseline"]["failed"] == 0
    vlm = json.loads(RunFolder(stages["baseline"]["results_dir"]).captions.read_text())
    results = ResultStore(pipeline_flow(str(path)).results_dir).results()
    assert len(results) == 3 and all(r.cost[0].candidates_scored == 3 + 1 for r in results)  # bank + the VLM's
    assert stages["vs_seed"]["n"] == 3
    batch = Path(stages["judging"]["path"])
    key = json.loads((batch / "key.json").read_text())
    rows = {r["pair_id"]: r for r in json.loads((batch / "pairs.json").read_text())}
    for pid, pair in key["pairs"].items():  # side A of every pair is the VLM's caption
        if not pair["catch"]:
            a_side = rows[pid]["left_text" if pair["left"] == "A" else "right_text"]
            assert a_side == vlm[pair["sample_id"]]


def test_a_frontier_stage_puts_the_run_and_its_sweep_variants_on_one_frontier(flow_config):
    path, raw = flow_config("frontier.yaml")
    strategies = ["mils", "best_of_n", "opro", "memory_concepts", "retrieval"]  # every strategy (issue 51)
    raw.update({"sweep": {"loop.strategy": strategies}, "judging": False, "frontier": True})
    path.write_text(yaml.safe_dump(raw))
    summary = pipeline_flow(str(path))
    stage = summary.stages["frontier"]
    assert stage["runs"] == 5 and not stage["cached"]  # the mils variant is the run itself: one point
    table = pd.read_csv(stage["table"])
    assert list(table["strategy"]) == strategies
    assert table["run"].iloc[4] in stage["pareto"]  # retrieval costs nothing: nothing beats it on cost
    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    logged = client.get_run(stage["run_id"])
    assert logged.data.tags["mils.kind"] == "frontier"
    assert logged.data.tags["mlflow.parentRunId"] == summary.parent_run_id  # a child of the pipeline's run
    assert pipeline_flow(str(path)).stages["frontier"]["cached"]  # a second run logs it once
    path.write_text(yaml.safe_dump({**raw, "frontier": "yes"}))
    with pytest.raises(Exception, match="'frontier' is true or false"):
        read_pipeline(str(path))
