"""Shared fixtures: fake components for loop logic, tiny real-class models, the real SmolLM2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from mils.protocols import Sample  # noqa: E402
from tests.fakes import WORDS, FakeGenerator, FakeScorer  # noqa: E402,F401

@pytest.fixture
def fake_scorer() -> FakeScorer:
    return FakeScorer()


@pytest.fixture
def fake_generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture
def fake_bank() -> list[str]:
    return [f"{a} {b}" for a in WORDS for b in WORDS if a != b][:200]


@pytest.fixture
def text_samples() -> list[Sample]:
    targets = ["red cat on sofa", "blue boat river", "man with hat", "dog grass ball", "bird sky tree"]
    return [Sample(id=f"s{i}", media=t) for i, t in enumerate(targets)]


# -- tiny real-class models -------------------------------------------------------------------

TINY_CLIP = "mils-test-tiny-vit"


@pytest.fixture(scope="session")
def tiny_clip_name(tmp_path_factory) -> str:
    """Register a tiny open_clip ViT config (random weights; real open_clip classes)."""
    import open_clip

    path = tmp_path_factory.mktemp("clipcfg") / f"{TINY_CLIP}.json"
    path.write_text(json.dumps({
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }))
    open_clip.add_model_config(path)
    return TINY_CLIP


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    from evaluation.sample_set import export

    export(tmp_path / "photos", ["chelsea", "coffee", "rocket"])
    return tmp_path / "photos"


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct generator (GGUF converted once into the mils cache)."""
    from mils.config import build_config
    from mils.captioning import build_generator

    config = build_config("offline", {"generator": {"max_new_tokens": 96}})
    return build_generator(config.generator, config.cache_path())
