import os
from pathlib import Path

import pytest
import yaml

from tests.fakes import WORDS

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["red cat on sofa", "blue boat river", "man with hat", "dog grass ball", "bird sky tree", "car near house"]


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """Flows run against a temporary Prefect server with its own SQLite database."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def flow_config(tmp_path):
    """Write a benchmark YAML using the fake components; returns (path, raw dict)."""
    bank = tmp_path / "bank.txt"
    bank.write_text("\n".join(f"{a} {b}" for a in WORDS for b in WORDS if a != b))

    def write(name="run.yaml", **changes):
        raw = {
            "profile": "offline",
            "name": "fake",
            "plugins": ["tests.fakes"],
            "generator": {"backend": "fake", "model": "fake"},
            "scorer": {"name": "fake_bow"},
            "bank": {"path": str(bank), "builtin": None},
            "loop": {"steps": 3, "keep": 4, "requested": 5, "seed": 5},
            "dataset": {"kind": "fake_text", "args": {"targets": TARGETS, "broken": [str(tmp_path / "broken.jpg")]}},
            "metrics": ["BLEU", "CIDEr"],
            "batch_size": 2,
            "executor": {"shard_size": 2},
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlruns.db'}", "experiment": "test"},
            "output_dir": str(tmp_path / "runs"),
            "cache_dir": str(tmp_path / "cache"),
        }
        for key, value in changes.items():
            section, _, field = key.partition("__")
            if field:
                raw[section] = {**raw[section], field: value}
            else:
                raw[key] = value
        (tmp_path / "broken.jpg").write_bytes(b"not an image")
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw))
        return path, raw

    return write


@pytest.fixture
def repo_on_pythonpath(monkeypatch):
    """Subprocesses and Dask workers import tests.fakes through the config's plugins."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
