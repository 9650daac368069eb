import json

import pytest

from mils.engine.records import SampleResult, StepRecord
from mils.storage.results import SCHEMA_VERSION, ResultStore, result_from_dict, result_to_dict


def _result(sample_id, caption="a cat", media=None):
    history = [StepRecord(0, caption, 0.5, 0.4, 3), StepRecord(1, caption + " on a mat", 0.6, 0.45, 2, False)]
    return SampleResult(sample_id, history, [(caption + " on a mat", 0.6), (caption, 0.5)], None, ["1. x"], media)


def test_store_round_trip_order_media_and_failures(tmp_path):
    store = ResultStore(tmp_path)
    store.write_failure("b", "unreadable image b.jpg")
    store.write(_result("b", media=str(tmp_path / "b.jpg")))  # a retry that worked clears the failure
    store.write(_result("a"))
    assert store.has("a") and store.has("b") and not store.has("c")
    assert [r.sample_id for r in store.results(["b", "a", "c"])] == ["b", "a"]
    assert store.results(["b"])[0].media == str(tmp_path / "b.jpg") and store.results(["a"])[0].media is None
    assert store.results(["a"])[0] == _result("a")  # typed, equal field by field
    assert store.failures() == {}
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_typed_records_round_trip_with_tuple_scores():
    style = SampleResult("s", [StepRecord(0, "make it blue", 1.5, 1.7, 2)], [("make it blue", (0.7, 0.8))])
    raw = json.loads(json.dumps(result_to_dict(style)))
    assert raw["schema"] == SCHEMA_VERSION
    assert result_from_dict(raw) == style
    assert result_from_dict(raw).truncated(0).caption == "make it blue"


def test_a_corrupt_or_foreign_result_file_is_named(tmp_path):
    store = ResultStore(tmp_path)
    store.write(_result("a"))
    path = next((tmp_path / "samples").glob("*.json"))
    path.write_text("{half")
    with pytest.raises(ValueError, match=path.name):
        store.results()
    path.write_text(json.dumps({**result_to_dict(_result("a")), "schema": 99}))
    with pytest.raises(ValueError, match=f"{path.name} has result schema 99"):
        store.results()
    path.write_text(json.dumps({"id": "a", "caption": "a cat"}))
    with pytest.raises(ValueError, match=f"{path.name} is not a MILS sample result"):
        store.results()


def test_trace_is_stored_with_each_text_once_and_old_files_open_without_it(fake_generator, fake_scorer, fake_bank,
                                                                          text_samples):
    from tests.mils.engine.test_loop import make_optimiser

    results = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=3, keep=4, requested=5).run(text_samples)
    for r in results:
        assert len(r.trace) == 4 and r.trace[0].new == []
        for record, trace in zip(r.history, r.trace):
            assert trace.kept[0] == (record.best, record.best_score)  # the step's best heads its kept set
            assert len(trace.kept) == 4
        assert [len(t.new) for t in r.trace[1:]] == [h.new_unique for h in r.history[1:]]
        raw = json.loads(json.dumps(result_to_dict(r)))
        texts = raw["trace"]["texts"]
        assert len(texts) == len(set(texts)) < sum(len(s["kept"]) + len(s["new"]) for s in raw["trace"]["steps"])
        assert result_from_dict(raw) == r
        assert result_from_dict(raw).truncated(1).trace == r.trace[:2]
        old = {k: v for k, v in raw.items() if k != "trace"} | {"schema": 2}
        assert result_from_dict(old).trace == [] and result_from_dict(old).history == r.history
    broken = {**raw, "trace": {"texts": [], "steps": [{"kept": [[3, 0.5]], "new": []}]}}
    with pytest.raises(ValueError, match=r"x\.json: trace\.steps\[0\]\.kept\[0\] is not an index into the 0 trace"):
        result_from_dict(broken, "x.json")


def test_a_full_disk_gives_a_clear_error_and_loses_nothing(tmp_path, monkeypatch):
    import errno

    import mils.files
    from mils.errors import StorageError

    store = ResultStore(tmp_path)
    store.write(_result("a"))

    def full_disk(fd):  # the half-written temporary file cannot reach the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mils.files.os, "fsync", full_disk)
    with pytest.raises(StorageError, match=r"No space left on device.*written before are intact"):
        store.write(_result("b"))
    monkeypatch.undo()
    assert [r.sample_id for r in store.results()] == ["a"]  # still readable, b simply not done
    assert not list(tmp_path.rglob("*.tmp"))  # no half-written file left behind
    store.write(_result("b"))  # space freed: the rerun goes on
    assert [r.sample_id for r in store.results()] == ["a", "b"]


def _minimised(sample_id, start, final):
    """A style-transfer-like result: a distance, best-ever going down."""
    history = [StepRecord(0, "edit a", start, start, 2), StepRecord(1, "edit b", final, final, 2)]
    return SampleResult(sample_id, history, [("edit b", final)], higher_is_better=False)


def test_the_scores_direction_is_recorded_and_read_back_everywhere(tmp_path):
    from evaluation.paired import run_gain
    from human_eval.viewer import RunIndex
    from mils.storage.results import direction

    store = ResultStore(tmp_path, scorer={"name": "style_transfer", "options": {"steps": 20}})
    store.write(_minimised("a", 1.0, 0.5))  # got better
    store.write(_minimised("b", 0.8, 0.8))  # unchanged: no sample-level hint of the direction
    raw = json.loads(next((tmp_path / "samples").glob("*.json")).read_text())
    assert raw["higher_is_better"] is False and raw["scorer"] == {"name": "style_transfer", "options": {"steps": 20}}
    results = store.results(["a", "b"])
    assert direction(results) is False
    _, scores = run_gain(results, {})
    assert (scores.wins, scores.ties, scores.losses) == (1, 1, 0)  # lower distance: a win, not a loss
    assert scores.mean.p_not_better < 0.5 and not scores.higher_is_better

    only_unchanged = ResultStore(tmp_path / "unchanged")
    only_unchanged.write(_minimised("b", 0.8, 0.8))
    assert RunIndex(tmp_path / "unchanged").lower_is_better  # read from the file, not guessed from the data


def test_results_of_both_directions_are_not_one_run():
    from mils.storage.results import direction

    with pytest.raises(ValueError, match="maximised and a minimised"):
        direction([_result("a"), _minimised("b", 1.0, 0.5)])
