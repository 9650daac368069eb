"""A benchmark run whose LLM is an OpenAI-compatible endpoint (a loopback fake): the response cache
makes a rerun send nothing, the price table gives dollars, and the API key is in no file the run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from tests.flows.conftest import ROOT
from tests.openai_fake import FakeEndpoint


def test_a_benchmark_run_on_an_endpoint_is_cached_and_never_writes_its_key(tmp_path, flow_config):
    secret = "sk-test-0123456789abcdef"
    server = FakeEndpoint(key=secret)
    try:
        _, raw = flow_config()
        raw["generator"] = {"backend": "openai", "model": "fake-llm",
                            "options": {"base_url": server.base_url, "api_key_env": "MILS_TEST_KEY"},
                            "price": {"prompt": 1.0, "generated": 2.0}}
        outputs = []
        for n in (1, 2):  # the second run: a new results folder, the same cache
            raw["output_dir"] = str(tmp_path / f"runs{n}")
            (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
            done = subprocess.run([sys.executable, "-m", "cli", "run", str(tmp_path / "run.yaml")], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=600,
                                  env={**os.environ, "MILS_TEST_KEY": secret,
                                       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
            assert done.returncode == 1, done.stderr[-3000:]  # 1: the broken image of the fake dataset failed
            outputs.append(done.stdout + done.stderr)
            if n == 1:
                sent = server.requests
        assert sent > 0 and server.requests == sent, outputs[0][-3000:]  # the second run sent nothing
        assert "from the response cache (not paid)" in outputs[1] and "$" in outputs[0]
        first, second = (sorted((tmp_path / f"runs{n}").glob("*/samples/*.json")) for n in (1, 2))
        assert [p.name for p in first] == [p.name for p in second] and len(first) > 0
        for a, b in zip(first, second):
            ra, rb = yaml.safe_load(a.read_text()), yaml.safe_load(b.read_text())
            assert ra["history"] == rb["history"] and ra["kept"] == rb["kept"]
        written = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert not [p for p in written if secret.encode() in p.read_bytes()]
        assert all(secret not in out for out in outputs)
    finally:
        server.close()


def test_a_results_folders_config_chooses_no_endpoint_key_store_or_plugin_of_yours(tmp_path, flow_config, monkeypatch,
                                                                                   capsys):
    """Issue 47, item 2: rerunning a shared folder's config.json sent the user's key to the host it
    named. The folder's endpoint, key variable, tracking store and plugins are refused in one line;
    --trust-config takes them as written, --mine drops them for the user's own."""
    from cli.main import main
    from mils.config.foreign import check_foreign, user_settings, without_user_settings

    secret = "sk-users-own-0123456789"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    server = FakeEndpoint()
    try:
        _, raw = flow_config()
        raw["generator"] = {"backend": "openai", "model": "fake-llm",
                            "options": {"base_url": server.base_url, "api_key_env": "AWS_SECRET_ACCESS_KEY"}}
        raw["plugins"] = [*raw["plugins"], "mils_planted_plugin"]
        raw["tracking"] = {"uri": f"sqlite:///{tmp_path}/theirs.db", "experiment": "theirs"}
        folder = tmp_path / "shared-run"
        (folder / "samples").mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(raw))
        (tmp_path / "mils_planted_plugin.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.chdir(tmp_path)
        assert main(["run", str(folder / "config.json")]) != 0
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--trust-config" in err and "--mine" in err
        for named in ("generator.options.base_url", "generator.options.api_key_env", "tracking.uri", "plugins"):
            assert named in err
        assert server.requests == 0 and not (tmp_path / "imported").exists() and not (tmp_path / "theirs.db").exists()
        assert secret not in err

        mine = without_user_settings(raw)
        assert user_settings(mine) == {} and mine["generator"]["options"] == {} and mine["tracking"] == {"experiment": "theirs"}
        assert mine["loop"] == raw["loop"] and mine["dataset"] == raw["dataset"]  # the science is kept
        assert check_foreign(folder / "config.json", raw, trust=False, mine=True) == mine
        assert check_foreign(folder / "config.json", raw, trust=True, mine=False) is raw  # the user's say-so
        assert check_foreign(tmp_path / "my-config.yaml", raw, trust=False, mine=False) is raw  # the user's own file
    finally:
        server.close()
