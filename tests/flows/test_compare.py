import json

import pytest

from cli.main import main
from flows.benchmark import run_benchmark
from mils.config.run_config import load_config
from mils.storage.results import ResultStore
from tests.flows.conftest import TARGETS


@pytest.fixture
def two_runs(flow_config):
    path, _ = flow_config()
    config = load_config(path)
    first = run_benchmark(config)
    other = config.model_copy(update={"loop": config.loop.model_copy(update={"seed": 6}), "name": "other"})
    return first, run_benchmark(other)


def test_compare_two_runs_and_a_run_with_its_own_step0(two_runs, capsys):
    first, second = two_runs
    assert main(["compare", str(first.results_dir), str(second.results_dir), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert f"{len(TARGETS)} shared samples" in out and "CIDEr" in out and "verdict:" in out
    assert "wins" in out  # both are MILS runs with the same scorer: per-sample win/tie/loss

    assert main(["compare", str(first.results_dir) + ":step0", str(first.results_dir)]) == 0
    out = capsys.readouterr().out
    # the run's final vs its own step 0 is its gain: never worse on the scorer (the best never drops)
    assert ", 0 losses" in out


def test_compare_a_run_with_another_systems_json_and_an_mlflow_run(two_runs, tmp_path, capsys):
    first, _ = two_runs
    other = tmp_path / "other.json"
    other.write_text(json.dumps({r.sample_id: "a photo" for r in ResultStore(str(first.results_dir)).results()}))
    assert main(["compare", str(other), str(first.results_dir)]) == 0
    out = capsys.readouterr().out
    assert "B better" in out or "no clear difference" in out
    assert "only when both systems are MILS runs" in out  # a JSON system has no scorer scores

    uri = load_config_uri(first)
    assert main(["compare", first.mlflow["child"], str(first.results_dir), "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "+0.0 [+0.0, +0.0]" in out  # the MLflow run holds the same results: no difference at all


def load_config_uri(outcome):
    from pathlib import Path

    from mils.config.run_config import RunConfig

    return RunConfig.model_validate_json((Path(str(outcome.results_dir)) / "config.json").read_text()).tracking.uri


def test_compare_names_bad_sides(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["compare", str(bad), str(bad), "--references", str(bad)]) == 2
    assert "must map sample id -> caption" in capsys.readouterr().err


def test_compare_with_a_mistyped_folder_names_it_and_creates_no_store(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "outputs/runs/typo", "outputs/runs/other"]) != 0
    err = capsys.readouterr().err
    assert "outputs/runs/typo: no such results folder" in err and err.count("\n") == 1
    assert not (tmp_path / "mlruns.db").exists()


def test_a_foreign_folders_dataset_path_is_never_echoed(two_runs, tmp_path, capsys):
    """Issue 47 (low): a config.json naming /proc/self/environ as its data had it echoed in errors."""
    import json
    import shutil

    first, _ = two_runs
    copy = tmp_path / "copy"
    shutil.copytree(first.results_dir, copy)
    raw = json.loads((copy / "config.json").read_text())
    raw["dataset"] = {"kind": "coco_captions", "args": {"annotations_json": "/proc/self/environ", "images_dir": "/secret/dir"}}
    (copy / "config.json").write_text(json.dumps(raw))
    assert main(["compare", f"{copy}:step0", str(copy), "--resamples", "20"]) == 2
    err = capsys.readouterr().err
    assert "'coco_captions' dataset" in err and "not shown" in err and "/proc/self/environ" not in err and "/secret" not in err
