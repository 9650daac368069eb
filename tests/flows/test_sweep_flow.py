import mlflow
import pytest
import yaml

from evaluation.run_record import read_record
from flows.report import sweep_report
from flows.sweep import expand_sweep, run_sweep
from mils.components.plan import plan_run


def test_sweep_creates_one_child_per_config_and_shares_step_runs(flow_config, tmp_path):
    path, raw = flow_config("sweep.yaml")
    raw["sweep"] = {"loop.steps": [1, 3], "loop.keep": [2, 4]}
    path.write_text(yaml.safe_dump(raw))
    grid, variants = expand_sweep(path)
    assert len(variants) == 4 and variants[0][1].loop.steps == 1 and variants[0][1].loop.keep == 2

    outcome = run_sweep(str(path))
    assert outcome.variants == 4
    assert outcome.optimisation_runs == 2  # steps variants are read off one 3-step run per keep

    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    parent = client.get_run(outcome.parent_run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    assert len(children) == 4
    points = sorted((c.data.params["sweep.loop.steps"], c.data.params["sweep.loop.keep"]) for c in children)
    assert points == [("1", "2"), ("1", "4"), ("3", "2"), ("3", "4")]
    # folders named by their settings, and linked both ways with the MLflow runs read off them
    import json
    from pathlib import Path

    folders = sorted(Path(raw["output_dir"]).glob("fake-keep*"))  # one name: the config's, then the settings
    assert [f.name.rsplit("-", 1)[0] for f in folders] == ["fake-keep=2", "fake-keep=4"]
    assert parent.info.run_name == "sweep fake" and {c.info.run_name.split("-")[0] for c in children} == {"fake"}
    by_id = {c.info.run_id: c for c in children}
    for folder in folders:
        linked = json.loads((folder / "sweep_runs.json").read_text())
        assert linked["parent_run_id"] == outcome.parent_run_id and len(linked["variants"]) == 2
        assert all(by_id[run_id].data.tags["mils.results_dir"] == str(folder) for run_id in linked["variants"].values())
        record = read_record(folder)  # each optimisation's record (issue 50, item 3): the longest variant's
        assert (record.kind, record.config.loop.steps, record.mlflow["variants"]) == ("sweep", 3, linked["variants"])
        assert record.counts["done"] == len(record.samples) > 0 and "final" in record.reports
    for child in children:  # a variant's run lasts as long as its optimisation did (not the 1 s of logging it)
        first_sample = min(f.stat().st_mtime for f in Path(child.data.tags["mils.results_dir"]).glob("samples/*.json"))
        assert child.info.start_time / 1000 <= first_sample
        steps = int(child.data.params["loop.steps"])
        history = client.get_metric_history(child.info.run_id, "by_step/best")
        assert sorted(m.step for m in history) == list(range(steps + 1))
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep_comparison.png", "quality_vs_cost.png", "sweep_table.json"} <= artifacts
    table = mlflow.load_table("sweep_table.json", run_ids=[outcome.parent_run_id])
    by_id = {c.info.run_id: c for c in children}
    assert sorted(table["run_id"]) == sorted(by_id)
    for row in table.to_dict("records"):
        child = by_id[row["run_id"]]
        assert (str(row["loop.steps"]), str(row["loop.keep"])) == (child.data.params["sweep.loop.steps"],
                                                        child.data.params["sweep.loop.keep"])
        assert row["score/final"] == pytest.approx(child.data.metrics["by_step/best"])  # the last step's best
        assert row["cost/generated_tokens"] > 0

    report = sweep_report(outcome.parent_run_id, raw["tracking"]["uri"], tmp_path / "report")
    assert "sweep.loop.steps" in report and "CIDEr [95% CI]" in report and len(report.splitlines()) == 2 + 4 + 1 + 1
    import pandas as pd

    paper = pd.read_csv(tmp_path / "report" / "report.csv")  # a table for a paper: every metric with its CI, units said
    assert len(paper) == 4 and {"steps", "keep", "CIDEr (x100)", "CIDEr (x100) low", "CIDEr (x100) high",
                                "change in CIDEr from step 0 (x100)", "samples improved"} <= set(paper)
    assert ((paper["CIDEr (x100) low"] <= paper["CIDEr (x100)"]) & (paper["CIDEr (x100)"] <= paper["CIDEr (x100) high"])).all()
    tex = (tmp_path / "report" / "report.tex").read_text()
    assert tex.count(r"\\") == 1 + 4 and r"\toprule" in tex and r"\label{tab:mils-sweep}" in tex
    header = tex.split(r"\toprule")[1].split(r"\\")[0]
    assert {"steps", "keep", "CIDEr", r"$\Delta$ score", "tokens / sample"} <= {h.strip() for h in header.split("&")}, header
    assert "Δ score [95% CI]" in report and "tokens/sample" in report  # the console table has them too
    assert "sweep." not in tex and outcome.parent_run_id not in tex.split("\n", 1)[1]  # only in the comment
    page = (tmp_path / "report" / "report.html").read_text()  # one page to share: the headline, the table, the plots
    assert "<title>MILS sweep fake</title>" in page and "4 variants; best CIDEr: " in page
    assert page.count("data:image/png;base64,") == 2 and page.count("<tr>") == 1 + 4


def test_a_sweep_resumes_a_folder_an_earlier_version_named(flow_config, tmp_path):
    from flows.sweep import expand_sweep, variant_config

    path, raw = flow_config("sweep.yaml")
    raw["sweep"] = {"loop.keep": [2]}
    path.write_text(yaml.safe_dump(raw))
    (point, config), = expand_sweep(path)[1]
    assert variant_config(config, "fake", point, True).name == "fake-keep=2"
    legacy = plan_run(config.model_copy(update={"name": "sweep-keep2"})).results_dir
    legacy.mkdir(parents=True)
    assert plan_run(variant_config(config, "fake", point, True)).results_dir == legacy
    assert variant_config(config, "fake", point, False).name == "fake"  # a pipeline's variants keep its name


def test_truncated_history_equals_a_real_shorter_run(flow_config):
    """Reading a 1-step variant off a 3-step run is exact."""
    from flows.benchmark import run_benchmark
    from mils.config.run_config import load_config
    from mils.storage.results import ResultStore

    long_path, _ = flow_config("long.yaml")
    short_path, _ = flow_config("short.yaml", loop={"steps": 1, "keep": 4, "requested": 5, "seed": 5})
    long_run = ResultStore(run_benchmark(load_config(long_path)).results_dir).results()
    short_run = ResultStore(run_benchmark(load_config(short_path)).results_dir).results()
    assert [r.history for r in short_run] == [r.history[:2] for r in long_run]
