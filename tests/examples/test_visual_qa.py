"""examples/visual_qa.py adds a task in one file: `mils run` with the plugin runs it into a results folder
that resumes, logs to MLflow, opens in `mils view` and gets a report (the real offline models)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _mils(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PREFECT_HOME": str(cwd / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("PREFECT_API")}
    return subprocess.run([str(BIN / "mils"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_a_plugin_task_runs_resumes_logs_opens_and_reports(tmp_path):
    raw = yaml.safe_load((ROOT / "examples" / "visual_qa.yaml").read_text())
    raw.update(output_dir=str(tmp_path / "runs"), tracking={"uri": f"sqlite:///{tmp_path / 'mlruns.db'}"},
               loop={"steps": 1}, dataset={**raw["dataset"], "limit": 2})
    path = tmp_path / "vqa.yaml"
    path.write_text(yaml.safe_dump(raw))
    first = _mils("run", str(path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "answer_accuracy" in first.stdout and "(2 computed, 0 resumed" in first.stdout
    again = _mils("run", str(path), cwd=tmp_path)
    assert again.returncode == 0 and "(0 computed, 2 resumed" in again.stdout, again.stderr[-2000:]

    folder, = (tmp_path / "runs").iterdir()
    runs = mlflow.MlflowClient(raw["tracking"]["uri"]).search_runs(
        [e.experiment_id for e in mlflow.MlflowClient(raw["tracking"]["uri"]).search_experiments()])
    assert any("final/answer_accuracy" in r.data.metrics for r in runs)

    from human_eval.viewer import RunIndex

    index = RunIndex(folder)  # the folder's config names a task this process may not know: read back as is
    assert len(index.rows) == 2
    sample = index.detail(next(iter(index.rows)))
    assert set(sample["metrics"]["final"]) == {"answer_accuracy"}
    report = _mils("report", str(folder), cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "answer_accuracy" in (folder / "report.html").read_text()
    assert "--plugins MODULE); the report shows no references" in report.stderr  # a folder imports nothing
    named = _mils("report", str(folder), "--plugins", "examples.visual_qa", cwd=tmp_path)
    assert named.returncode == 0 and "no references" not in named.stderr, named.stderr[-2000:]


def test_the_question_fills_the_tasks_own_prompt_and_the_answers_start_each_sample():
    import examples.visual_qa as vqa
    from mils.config.task_specs import get_task
    from mils.protocols import Sample

    spec = get_task("visual_qa")
    sample = vqa.visual_qa_photos().rows[0].as_sample()
    prompt = spec.template.render([("a cat", 0.5)], 5, **spec.sample_slots(sample))
    assert "The question is: What animal is in the picture?" in prompt and "0.500: a cat" in prompt
    assert spec.own_candidates(sample) == list(vqa.ANSWERS) and not spec.uses_bank
    assert vqa.answer_accuracy("a tabby cat on a sofa", ["cat"]) == 1.0
    assert vqa.answer_accuracy("a category", ["cat"]) == 0.0  # whole words only
    with pytest.raises(KeyError):
        spec.sample_slots(Sample("x", None))  # a sample without its question is not asked about


def test_a_plan_of_the_plugins_task_travels_to_a_worker_process():
    """A Dask worker gets the plan pickled: the spec's functions travel by name, the config imports the plugin."""
    import pickle

    from mils.components.plan import plan_run
    from mils.config.run_config import build_config

    config = build_config("offline", {"plugins": ["examples.visual_qa"], "task": "visual_qa",
                                      "dataset": {"kind": "visual_qa_photos"}})
    assert config.metrics == ("answer_accuracy",) and config.loop.max_words == 8  # the task's own defaults
    plan = pickle.loads(pickle.dumps(plan_run(config)))
    sample = __import__("examples.visual_qa").visual_qa.visual_qa_photos().rows[1].as_sample()
    assert plan.task.sample_slots(sample) == {"question": "What is in the cup?"}


def test_a_folder_of_an_unknown_task_reads_back_but_a_new_config_naming_it_is_refused(tmp_path):
    from mils.config.run_config import RunConfig, build_config, read_run_config
    from mils.registry import UnknownComponentError

    raw = build_config("offline").model_dump(mode="json")
    raw.update(task="someone_elses_task", metrics=["their_metric"])
    (tmp_path / "config.json").write_text(__import__("json").dumps(raw))
    config = read_run_config(tmp_path / "config.json")
    assert config.task == "someone_elses_task" and config.metrics == ("their_metric",)
    with pytest.raises(UnknownComponentError, match="someone_elses_task"):
        RunConfig.model_validate(raw)


def test_the_plugins_task_brings_its_own_verb(tmp_path):
    """Issue 50: a spec's command is a `mils` verb (`--plugin` imports the plugin before the parser is built):
    the image and question given become the run's one sample, the plugin is in the run's config."""
    import json

    photo = Path(__import__("skimage").__file__).parent / "data" / "chelsea.png"
    out = _mils("--plugin", "examples.visual_qa", "vqa", str(photo), "What animal is in the picture?",
                "--answer", "cat", "--answer", "kitten", "--steps", "1", "--out", str(tmp_path / "runs"), cwd=tmp_path)  # MLflow: ./mlruns.db
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(1 computed, 0 resumed" in out.stdout and "answer_accuracy" in out.stdout
    folder, = (tmp_path / "runs").iterdir()
    config = json.loads((folder / "config.json").read_text())
    assert config["plugins"] == ["examples.visual_qa"] and config["task"] == "visual_qa"
    assert config["dataset"]["args"]["answers"] == ["cat", "kitten"]
    missing = _mils("--plugin", "examples.visual_qa", "vqa", "nothere.png", "What?", cwd=tmp_path)
    assert missing.returncode == 2 and "dataset.args.image: nothere.png not found" in missing.stderr
    unknown = _mils("--plugin", "examples.no_such_plugin", "vqa", "x.png", "What?", cwd=tmp_path)
    assert unknown.returncode == 2 and "cannot import plugin module 'examples.no_such_plugin'" in unknown.stderr
    assert "invalid choice: 'vqa'" in _mils("vqa", "x.png", "What?", cwd=tmp_path).stderr  # no plugin, no verb
