"""RunFolder owns a results folder's ledgers (mlflow.json, sweep_runs.json, pipeline.json): one reader, one writer."""

import json

import pytest

from mils.errors import InputError
from mils.storage import RunFolder


def test_a_ledger_reads_empty_until_written_and_back_as_written(tmp_path):
    folder = RunFolder(tmp_path)
    assert folder.read_ledger("pipeline") == {}
    folder.write_ledger("pipeline", {"parent_run_id": "abc", "logged": {"bank": "k"}})
    assert folder.read_ledger("pipeline") == {"parent_run_id": "abc", "logged": {"bank": "k"}}
    assert json.loads(folder.pipeline.read_text())["parent_run_id"] == "abc"
    with pytest.raises(ValueError, match="no ledger 'config'"):
        folder.read_ledger("config")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_malformed_ledger_is_one_error_naming_its_file(tmp_path, text):
    folder = RunFolder(tmp_path)
    folder.mlflow.write_text(text)
    with pytest.raises(InputError, match=f"mlflow ledger.*{folder.mlflow}"):
        folder.read_ledger("mlflow")


def test_a_ledger_is_never_written_through_a_link_planted_in_the_folder(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    folder = RunFolder(tmp_path / "run")
    folder.root.mkdir()
    folder.sweep_runs.symlink_to(outside)
    folder.write_ledger("sweep_runs", {"sweep": "s"})
    assert outside.read_text() == "{}" and not folder.sweep_runs.is_symlink()
    assert folder.read_ledger("sweep_runs") == {"sweep": "s"}
