import pytest

from mils.loop import SampleResult, StepRecord
from mils.results import ResultStore


def _result(sample_id, caption="a cat"):
    return SampleResult(sample_id, [StepRecord(0, caption, 0.5, 0.4, 3)], [(caption, 0.5)])


def test_store_round_trip_order_media_and_failures(tmp_path):
    store = ResultStore(tmp_path)
    store.write_failure("b", "unreadable image b.jpg")
    store.write(_result("b"), media=tmp_path / "b.jpg")  # a retry that worked clears the failure
    store.write(_result("a"))
    assert store.has("a") and store.has("b") and not store.has("c")
    assert [r["sample_id"] for r in store.results(["b", "a", "c"])] == ["b", "a"]
    assert store.results(["b"])[0]["media"] == str(tmp_path / "b.jpg") and store.results(["a"])[0]["media"] is None
    assert store.failures() == {}
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_a_corrupt_result_file_is_named(tmp_path):
    store = ResultStore(tmp_path)
    store.write(_result("a"))
    path = next((tmp_path / "samples").glob("*.json"))
    path.write_text("{half")
    with pytest.raises(ValueError, match=path.name):
        store.results()
