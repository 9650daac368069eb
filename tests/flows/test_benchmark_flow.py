import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from flows.benchmark import run_benchmark
from mils.components.plan import plan_run
from mils.config.run_config import load_config
from mils.storage.results import ResultStore
from tests.flows.conftest import TARGETS


def _results(results_dir) -> dict:
    return {r.sample_id: (r.history, r.kept) for r in ResultStore(results_dir).results()}


def test_a_benchmark_run_resolves_its_config_once(flow_config, monkeypatch):
    """The result key is worked out once per run (the plan), whatever the rooms and tasks need of it."""
    from mils.config.run_config import RunConfig

    computed = []
    key = RunConfig.result_key
    monkeypatch.setattr(RunConfig, "result_key", lambda self: computed.append(self.name) or key(self))
    record = run_benchmark(load_config(flow_config()[0]))
    assert computed == ["fake"] and record.result_key == key(record.config)
    assert json.loads((record.results_dir / "run.json").read_text())["result_key"] == record.result_key


def test_a_benchmark_run_checks_each_sample_media_once(flow_config, monkeypatch):
    """The flow checks the media before it cuts shards (an image is decoded whole): the shards do not again."""
    import mils.run.runner as runner

    checked = []
    problem = runner.sample_media_problem
    monkeypatch.setattr(runner, "sample_media_problem", lambda media: checked.append(str(media)) or problem(media))
    outcome = run_benchmark(load_config(flow_config()[0]))
    assert outcome.counts["done"] == len(TARGETS) and len(outcome.failures) == 1
    assert len(checked) == len(set(checked)) == len(TARGETS) + 1  # every sample once, the broken one included


def test_benchmark_logs_per_step_metrics_and_records_bad_samples(flow_config):
    path, raw = flow_config()
    config = load_config(path)
    outcome = run_benchmark(config)
    assert outcome.counts["done"] == len(TARGETS)
    assert list(outcome.failures) == [raw["dataset"]["args"]["broken"][0]]  # recorded, run finished

    client = mlflow.tracking.MlflowClient(config.tracking.uri)
    child = client.get_run(outcome.mlflow["child"])
    assert child.data.tags["mlflow.parentRunId"] == outcome.mlflow["parent"]
    assert child.data.tags["mlflow.note.content"].startswith("MILS raised the optimised score on")  # issue 48, 6
    history = client.get_metric_history(child.info.run_id, "by_step/best")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    values = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert values == sorted(values)  # mean best score never decreases
    metrics = child.data.metrics
    assert {"step0/CIDEr", "final/CIDEr", "final/CIDEr_ci_low", "final/CIDEr_ci_high"} <= set(metrics)
    assert metrics["samples/failed"] == 1 and metrics["samples/done"] == len(TARGETS)
    assert child.data.params["loop.steps"] == "3" and child.data.tags["result_key"] == config.result_key()
    assert "git_revision" in child.data.tags and "version.prefect" in child.data.tags
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"results.parquet", "captions.csv", "score_vs_step.png", "failed.csv", "config.json", "cost.json",
            "gain.json", "quality_vs_cost.png"} <= artifacts
    # the cost ledger: totals and per step; the paired gain of final over step 0
    assert metrics["cost/generated_tokens"] > 0 and metrics["cost/samples"] == len(TARGETS)
    assert sorted(m.step for m in client.get_metric_history(child.info.run_id, "cost/step_generated_tokens")) == [1, 2, 3]
    assert {"gain/CIDEr", "gain/CIDEr_ci_low", "gain/score", "gain/wins"} <= set(metrics)
    assert metrics["gain/losses"] == 0  # the best score never drops
    # the typed record: what MLflow got, computed once, also written as run.json
    assert (outcome.version, outcome.status, outcome.result_key) == (1, "completed with failures", config.result_key())
    assert outcome.counts == {"original": len(TARGETS) + 1, "drawn": len(TARGETS) + 1, "skipped": 0,
                              "done": len(TARGETS), "failed": 1, "computed": len(TARGETS), "resumed": 0}
    assert outcome.gain["CIDEr"].delta == pytest.approx(metrics["gain/CIDEr"])
    assert outcome.score_gain.wins == metrics["gain/wins"] and outcome.higher_is_better
    assert outcome.cost["generated_tokens"] == metrics["cost/generated_tokens"]
    written = json.loads((outcome.results_dir / "run.json").read_text())
    assert written["version"] == 1 and written["mlflow"]["child"] == child.info.run_id
    assert written["counts"] == outcome.counts and written["provenance"]["git_revision"] == child.data.tags["git_revision"]
    # read back by the one reader, typed: the same record (NaN where a metric has none, as written)
    from evaluation.run_record import read_record

    assert json.dumps(read_record(outcome.results_dir).as_dict()) == json.dumps(outcome.as_dict())


def test_the_cli_formats_the_record_without_reading_the_results_back(flow_config, capsys):
    import shutil

    from cli.run import _print_benchmark

    path, _ = flow_config()
    outcome = run_benchmark(load_config(path))
    shutil.rmtree(outcome.results_dir / "samples")  # nothing left to re-read: the record has it all
    _print_benchmark(outcome)
    out = capsys.readouterr().out
    assert all(line.caption in out for line in outcome.samples) and "share of resamples with change > 0" in out
    assert "MILS raised the optimised score on" in out.splitlines()[-1]  # one headline sentence ends it
    assert f"{len(TARGETS)} computed, 0 resumed" in out and "cost:" in out


def test_a_dataset_without_references_finishes_with_the_metrics_skipped_and_says_so(flow_config, capsys, caplog):
    """A folder of photos has no references (documented as optional): the run finishes, writes
    run.json and its scores; the reference metrics are skipped with one line saying why."""
    from cli.run import _print_benchmark

    path, _ = flow_config(dataset={"kind": "fake_text",
                                     "args": {"targets": TARGETS, "references": False}})
    outcome = run_benchmark(load_config(path))
    assert (outcome.results_dir / "run.json").is_file() and len(outcome.samples) == len(TARGETS)
    assert not outcome.reports and not outcome.gain and any("no reference captions" in r.getMessage() for r in caplog.records)
    _print_benchmark(outcome)
    assert "computed" in capsys.readouterr().out


def test_a_sample_skipped_at_load_is_recorded_in_failed_with_its_reason(flow_config):
    """The folder alone tells what was dropped and why (before, a sample skipped when the dataset
    loaded was counted in run.json but left no trace in failed/)."""
    from mils.storage.results import ResultStore

    path, _ = flow_config(dataset={"kind": "fake_text", "args": {"targets": TARGETS, "unreferenced": ["red cat"]}})
    outcome = run_benchmark(load_config(path))
    recorded = ResultStore(outcome.results_dir).failures()
    assert recorded == {"u000": "no non-empty reference"} and outcome.failures == recorded


def test_a_second_run_of_a_config_being_run_is_refused_and_changes_nothing(flow_config):
    from mils.errors import InputError
    from mils.storage.run_folder import folder_lock

    config = load_config(flow_config()[0])
    with folder_lock(plan_run(config).results_dir):  # the first run, still writing
        with pytest.raises(InputError, match=f"another run \\(pid {os.getpid()}\\) is writing"):
            run_benchmark(config)
    assert not (plan_run(config).results_dir / "samples").exists() or not any((plan_run(config).results_dir / "samples").iterdir())
    assert run_benchmark(config).counts["computed"] == len(TARGETS)  # the lock went with its holder


def test_killed_run_resumes_to_the_same_results_without_duplicates(flow_config, repo_on_pythonpath, tmp_path):
    # one sample per batch and shard; the run kills itself (SIGKILL) after its second sample is written
    path, _ = flow_config("killed.yaml", plugins=["tests.fakes", "tests.kill_points"], batch_size=1,
                          executor__shard_size=1)
    config = load_config(path)
    samples_dir = plan_run(config).results_dir / "samples"
    proc = subprocess.Popen([sys.executable, "-m", "cli", "run", str(path)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "MILS_KILL_AT": "second-sample"},
                            start_new_session=True)
    try:
        assert proc.wait(timeout=300) == -signal.SIGKILL
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its Prefect server child too
    survivors = {p.name: p.stat().st_mtime_ns for p in samples_dir.glob("*.json")}
    assert len(survivors) == 2 < len(TARGETS)

    outcome = run_benchmark(config)  # same config: resume
    assert outcome.counts["resumed"] == len(survivors)
    assert outcome.counts["computed"] == len(TARGETS) - len(survivors)
    after = {p.name: p.stat().st_mtime_ns for p in samples_dir.glob("*.json")}
    assert len(after) == len(TARGETS)  # nothing lost, nothing duplicated
    assert all(after[name] == mtime for name, mtime in survivors.items())  # finished ones not recomputed

    fresh = run_benchmark(config.model_copy(update={"output_dir": str(tmp_path / "uninterrupted")}))
    assert _results(fresh.results_dir) == _results(plan_run(config).results_dir)


def test_dask_run_equals_thread_run(flow_config, repo_on_pythonpath, tmp_path):
    path, _ = flow_config("dask.yaml", executor={"kind": "dask", "workers": 2, "shard_size": 2})
    dask_config = load_config(path)
    threads = run_benchmark(dask_config.model_copy(update={
        "executor": dask_config.executor.model_copy(update={"kind": "threads", "workers": None}), "output_dir": str(tmp_path / "threads")}))
    dask = run_benchmark(dask_config)
    assert Path(dask.results_dir) != Path(threads.results_dir)
    assert _results(dask.results_dir) == _results(threads.results_dir)
    assert len(_results(dask.results_dir)) == len(TARGETS)
    # peak memory says whose it is: the workers' beside this process's, only when workers ran shards
    assert dask.cost["worker_peak_rss_mb"] > 50 and "worker_peak_rss_mb" not in threads.cost


def test_a_rerun_after_a_kill_during_mlflow_logging_leaves_no_run_running(flow_config):
    """A SIGKILL while MLflow logs leaves the parent and a half-logged child RUNNING (simulated here
    through the client: the kill's timing cannot be aimed at the logging in a test). The rerun
    reopens the parent, marks the orphan KILLED, and finishes with one parent for the config."""
    path, raw = flow_config()
    config = load_config(path)
    first = run_benchmark(config)
    client = mlflow.tracking.MlflowClient(config.tracking.uri)
    experiment = client.get_run(first.mlflow["parent"]).info.experiment_id
    orphan = client.create_run(experiment, tags={"mlflow.parentRunId": first.mlflow["parent"]}).info.run_id
    client.log_metric(orphan, "by_step/best", 0.5)
    client.update_run(first.mlflow["parent"], status="RUNNING")

    second = run_benchmark(config)
    assert second.mlflow["parent"] == first.mlflow["parent"]  # reopened, not a second parent
    assert client.get_run(orphan).info.status == "KILLED"
    statuses = [r.info.status for r in client.search_runs([experiment])]
    assert "RUNNING" not in statuses
    parents = client.search_runs([experiment], "tags.`mils.kind` = 'benchmark'")
    assert [p.info.status for p in parents] == ["FINISHED"]


def test_rerunning_a_finished_config_logs_nothing_twice(flow_config):
    path, raw = flow_config()
    config = load_config(path)
    first = run_benchmark(config)
    again = run_benchmark(config)  # nothing changed: the same child run, no second one
    assert (again.mlflow["parent"], again.mlflow["child"]) == (first.mlflow["parent"], first.mlflow["child"])
    client = mlflow.tracking.MlflowClient(config.tracking.uri)
    experiment = client.get_run(first.mlflow["parent"]).info.experiment_id
    assert len(client.search_runs([experiment], "tags.`mils.kind` = 'config'")) == 1
    more = run_benchmark(config.model_copy(update={"metrics": ("BLEU",)}))  # other metrics: logged anew
    assert more.mlflow["child"] != first.mlflow["child"] and more.mlflow["parent"] == first.mlflow["parent"]


def test_a_results_folder_written_before_the_rooms_opens_and_resumes(tmp_path):
    """tests/data/run_before_rooms: a run written by the code before mils/ moved into rooms (de7eaca).
    It reads back typed, its result key is the one it was written under, and a rerun resumes every sample
    (its bank file, under /tmp/oldgen there, is not read: nothing is recomputed)."""
    import shutil

    from evaluation.finished_run import FinishedRun

    old = Path(__file__).resolve().parents[1] / "data" / "run_before_rooms"
    folder = tmp_path / "runs" / "fake-5761315fca45"
    shutil.copytree(old, folder)
    run = FinishedRun.open(folder, need_config=True)
    assert run.config.result_key() == "5761315fca45" == run.record.result_key
    assert len(run.results()) == 3 and run.final_metrics["CIDEr"] == pytest.approx(170.2930032023685)
    config = run.config.model_copy(update={"output_dir": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache"),
                                           "tracking": run.config.tracking.model_copy(
                                               update={"uri": f"sqlite:///{tmp_path / 'mlruns.db'}"})})
    before = {p.name: p.read_bytes() for p in (folder / "samples").iterdir()}
    outcome = run_benchmark(config)
    assert outcome.results_dir == folder and outcome.counts["resumed"] == 3 and outcome.counts["computed"] == 0
    assert {p.name: p.read_bytes() for p in (folder / "samples").iterdir()} == before


def test_starting_a_run_that_is_running_is_one_line_before_any_flow(flow_config, capsys, monkeypatch):
    """Issue 48, item 5: a 23-line Prefect traceback and the message 4 times; and an odd .lock (47)."""
    import flows.benchmark
    from cli.main import main
    from mils.storage.run_folder import folder_lock

    path = flow_config()[0]
    config = load_config(path)
    monkeypatch.setattr(flows.benchmark, "benchmark_flow", lambda *a, **k: pytest.fail("a flow started"))
    with folder_lock(plan_run(config).results_dir):
        assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"another run (pid {os.getpid()}) is writing" in err
    lock = plan_run(config).results_dir / ".lock"
    lock.unlink()
    lock.mkdir()  # an odd .lock: a folder
    assert main(["run", str(path)]) == 2
    assert ".lock is not a regular file: remove it" in capsys.readouterr().err
