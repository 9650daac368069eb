"""`mils baseline`: a tiny BLIP-2 over photos, written as a one-step run that the rest of the suite reads."""

import pytest

from mils.config.run_config import build_config

pytestmark = pytest.mark.slow


def test_baseline_run_is_a_one_step_run_the_suite_reads(tmp_path, photo_dir, tiny_clip_name):
    from evaluation.compare import system_from_path
    from evaluation.vlm_baseline import baseline_key, run_baseline
    from human_eval.viewer import RunIndex
    from mils.storage.results import ResultStore
    from tests.tiny_models import tiny_blip2

    (photo_dir / "broken.jpg").write_bytes(b"not an image")
    config = build_config("offline", {
        "scorer": {"name": "open_clip", "options": {"model": tiny_clip_name, "pretrained": None, "device": "cpu"}},
        "dataset": {"kind": "folder", "args": {"directory": str(photo_dir)}},
        "output_dir": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache")})
    options = {"model": str(tiny_blip2(tmp_path / "blip2")), "max_new_tokens": 6, "device": "cpu"}
    outcome = run_baseline(config, "blip2", options, batch_size=2)
    assert outcome["done"] == 3 and list(outcome["failed"]) == ["broken.jpg"]
    results = ResultStore(outcome["results_dir"]).results()
    for r in results:
        assert len(r.history) == 1 and r.caption == r.initial.best and r.media.endswith(".jpg")
        assert r.cost[0].generated_tokens > 0 and r.cost[0].llm_seconds > 0
    side = system_from_path(outcome["results_dir"])
    assert side.predictions == {r.sample_id: r.caption for r in results} and side.config is not None
    assert len(RunIndex(outcome["results_dir"]).rows) == 4  # three captions and the failure
    from evaluation.run_record import read_record  # its record, read back typed (issue 50, item 3)

    record = read_record(outcome["results_dir"])
    assert record.kind == "baseline" and record.counts["done"] == 3 and list(record.failures) == ["broken.jpg"]
    assert record.result_key == baseline_key(config, "blip2", options)  # what the results depend on, not a name
    assert {s.sample_id: s.caption for s in record.samples} == side.predictions

    class Refuses:  # a rerun finds every sample done and captions nothing
        def caption(self, images):
            raise AssertionError("captioned again")

    assert run_baseline(config, "blip2", options, model=Refuses())["done"] == 3
