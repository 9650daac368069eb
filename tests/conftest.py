"""Shared fixtures: fake components for loop logic, tiny real-class models, the real SmolLM2."""

from __future__ import annotations

import json
import os
import random
import re
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from mils.protocols import Sample  # noqa: E402

WORDS = "cat dog red blue ball grass sofa tree car sky river boat bird house man woman child hat".split()


def _bag(text: str, dim: int = 64) -> np.ndarray:
    vec = np.zeros(dim, np.float32)
    for word in re.findall(r"[a-z]+", text.lower()):
        vec[zlib.crc32(word.encode()) % dim] += 1.0
    return vec


class FakeScorer:
    """Bag-of-words cosine between a caption and the sample's target text (``sample.media``)."""

    higher_is_better = True

    def __init__(self) -> None:
        self.texts_embedded: list[str] = []
        self.samples_embedded: list[str] = []

    def fingerprint(self) -> str:
        return "fake-bow-64"

    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        self.samples_embedded += [s.id for s in samples]
        return np.stack([self._unit(_bag(s.media)) for s in samples])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.texts_embedded += list(texts)
        return np.stack([self._unit(_bag(t)) for t in texts])

    @staticmethod
    def _unit(v: np.ndarray) -> np.ndarray:
        return v / max(float(np.linalg.norm(v)), 1e-9)

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return sample_emb @ text_emb.T


class FakeGenerator:
    """Seeded word-shuffling 'LLM': recombines words from the prompt and a vocabulary.

    Each reply depends only on its own prompt and seed; it records every batch it was given.
    """

    def __init__(self, per_reply: int = 5) -> None:
        self.per_reply = per_reply
        self.batches: list[int] = []

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[str]:
        self.batches.append(len(prompts))
        replies = []
        for prompt, seed in zip(prompts, seeds):
            rng = random.Random(seed)
            shown = re.findall(r"^\d\.\d{3}: (.*)$", prompt, flags=re.M)
            lines = ["Here are some new descriptions:"]
            for i in range(self.per_reply):
                base = rng.choice(shown).split() if shown else []
                words = base + rng.sample(WORDS, 2)
                rng.shuffle(words)
                lines.append(f"{i + 1}. {' '.join(words[:5])}")
            replies.append("\n".join(lines))
        return replies


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
