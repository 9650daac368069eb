"""Issue 37's low items: careless or hostile input gets one clear line, and nothing is lost."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from mils.errors import InputError
from tests.conftest import write_run_record


def test_a_sweep_of_a_million_variants_is_refused_before_any_is_built(monkeypatch):
    from flows import sweep

    built = []
    monkeypatch.setattr(sweep, "build_config", lambda *a: built.append(a))
    grid = {f"loop.k{i}": list(range(10)) for i in range(6)}
    with pytest.raises(InputError, match=r"1,000,000 variants \(10 x 10 x 10 x 10 x 10 x 10\)"):
        sweep.sweep_variants("offline", {}, grid)
    assert built == []


@pytest.mark.parametrize("days", ["-5", "nan", "0"])
def test_cache_prune_refuses_days_that_would_delete_everything(tmp_path, days, capsys):
    from mils.components.response_cache import ResponseCache

    cache = ResponseCache(tmp_path)
    cache.put("k", "m", "a reply")
    assert main(["cache", "prune", "--cache-dir", str(tmp_path), "--older-than", days]) == 2
    assert "above 0" in capsys.readouterr().err and cache.get("k") is not None


def test_a_corrupt_config_json_is_one_line_naming_the_file(tmp_path):
    from evaluation.finished_run import FinishedRun

    (tmp_path / "samples").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"profile": "offline", "loop": {"steps": "many"}}))
    with pytest.raises(InputError, match=r"config.json is not a run config this suite can read"):
        assert FinishedRun.open(tmp_path).config is None  # never reached: reading it raises


def test_reading_commands_never_create_a_tracking_store(tmp_path, monkeypatch, capsys):
    """A 32-hex id that is no run, read against a store that does not exist, created an empty one."""
    monkeypatch.chdir(tmp_path)
    assert main(["view", "0123456789abcdef0123456789abcdef", "--tracking-uri", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "no MLflow store" in capsys.readouterr().err and not (tmp_path / "none.db").exists()


def test_malformed_pairs_json_is_one_line(tmp_path):
    from human_eval.server import create_app

    (tmp_path / "pairs.json").write_text('{"not": "a list"}')
    with pytest.raises(InputError, match="pairs.json is not a list of pairs"):
        create_app(tmp_path)


def test_a_busy_view_port_is_skipped_by_default_and_named_when_asked_for():
    import socket

    from cli.evaluate import _free_port

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert _free_port("127.0.0.1", port, explicit=False) != port
        with pytest.raises(InputError, match=f"port {port} on 127.0.0.1 is in use"):
            _free_port("127.0.0.1", port, explicit=True)


def test_a_config_key_typo_gets_the_closest_key_and_a_missing_dataset_is_one_line(tmp_path, capsys):
    from mils.config.run_config import build_config

    with pytest.raises(InputError, match=r"loop.stesp: not a setting here; did you mean 'steps'\?"):
        build_config("offline", {"loop": {"stesp": 3}})
    (tmp_path / "run.yaml").write_text("profile: offline\ndataset: {kind: folder, args: {directory: /no/such/dir}}\n")
    assert main(["run", str(tmp_path / "run.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "mils: error: dataset.args.directory: /no/such/dir not found (dataset 'folder')"


def test_a_planted_or_malformed_run_record_is_one_line_or_nothing(tmp_path):
    """run.json of a folder from elsewhere: a pipe under the name is never opened (no record), a
    record of the wrong shape is one InputError naming the file, NaN metrics (as the flow writes
    them) are read as NaN."""
    import os

    from evaluation.finished_run import FinishedRun

    (tmp_path / "samples").mkdir()
    os.mkfifo(tmp_path / "run.json")
    assert FinishedRun.open(tmp_path).final_metrics == {}
    os.remove(tmp_path / "run.json")
    write_run_record(tmp_path, reports={"final": {"corpus": {"CIDEr": 3}}})
    with pytest.raises(InputError, match=r"run.json is not a run record this suite can read \(TypeError"):
        FinishedRun.open(tmp_path).final_metrics  # noqa: B018
    path = write_run_record(tmp_path, reports={"final": {"corpus": {"CIDEr": {"value": 0.123456, "ci_low": 0.4,
                                                                              "ci_high": 0.6}}}})
    path.write_text(path.read_text().replace("0.123456", "NaN"))  # as the flow writes a metric with no value
    assert str(FinishedRun.open(tmp_path).final_metrics) == "{'CIDEr': nan}"


def test_careless_outputs_and_deep_json_are_one_line(tmp_path, capsys):
    """Issue 47 (low): tracebacks for an output that is a file or a folder, and 100k-deep JSON."""
    import json

    from cli.main import main

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"s": "a cat"}))
    b.write_text(json.dumps({"s": "a dog"}))
    (tmp_path / "a-file").write_text("")
    for argv in (["eval", "--predictions", str(deep), "--references", str(deep)],
                 ["compare", str(deep), str(deep), "--references", str(deep)],
                 ["human-eval", "export", "--a", str(deep), "--b", str(b), "--out", str(tmp_path / "batch")],
                 ["human-eval", "export", "--a", str(a), "--b", str(b), "--out", str(tmp_path / "a-file")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("mils: error:") and err.count("\n") == 1, err[-500:]


def test_writing_over_a_folder_is_refused_in_one_line(tmp_path):
    import pytest

    from mils.errors import InputError
    from mils.files import write_atomic

    with pytest.raises(InputError, match="is a folder"):
        write_atomic(tmp_path, "{}")


def test_a_malformed_ipv6_webhook_and_a_broken_response_cache_are_one_line(tmp_path, capsys):
    """Issue 47 (low): both were tracebacks."""
    import pytest

    from cli.main import main
    from flows.notify import read_notify
    from mils.errors import InputError

    with pytest.raises(InputError, match=r"notify\[0\]: not a valid URL"):
        read_notify(["http://[::1/hook"])
    import sqlite3

    with sqlite3.connect(tmp_path / "responses.sqlite") as db:  # a database, with another table called responses
        db.execute("CREATE TABLE responses (x TEXT)")
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a response cache this suite can read" in err and err.count("\n") == 1
