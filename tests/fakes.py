"""Fake components for loop and orchestration tests, registered so configs can name them.

Subprocess tests load this module through a config's ``plugins: [tests.fakes]``.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from evaluation.datasets import Dataset, EvalSample
from mils.protocols import Reply, Sample, TokenUsage
from mils.registry import register

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
        return [Reply(r, TokenUsage(len(p.split()), len(r.split()))) for p, r in zip(prompts, replies)]  # words


@register("generator", "fake")
def fake_generator_factory(per_reply: int = 5, delay: float = 0.0, delay_per_prompt: float = 0.0, die_at_call: int = 0,
                           die_unless: str | None = None, die_once: bool = False, **_ignored) -> "FakeGenerator":
    """``delay``: seconds per call, plus ``delay_per_prompt`` per prompt in it. ``die_at_call``: the process SIGKILLs itself on that call of
    ``generate`` (a dying Dask worker) unless the file ``die_unless`` exists; ``die_once`` creates
    that file just before dying, so only one process dies."""
    generator = FakeGenerator(per_reply)
    original = generator.generate
    calls = [0]

    def generate(prompts, seeds):
        calls[0] += 1
        if calls[0] == die_at_call and not (die_unless and Path(die_unless).exists()):
            if die_once and die_unless:
                Path(die_unless).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        _sleep(delay + delay_per_prompt * len(prompts))
        return original(prompts, seeds)

    generator.generate = generate  # type: ignore[method-assign]
    return generator


@register("scorer", "fake_bow")
def fake_scorer_factory(delay_per_sample: float = 0.0) -> "FakeScorer":
    """``delay_per_sample``: seconds per sample and scoring (a stand-in for a real scorer's latency)."""
    scorer = FakeScorer()
    if delay_per_sample:
        similarity = scorer.similarity

        def slow(sample_emb, text_emb):
            _sleep(delay_per_sample * len(sample_emb))
            return similarity(sample_emb, text_emb)

        scorer.similarity = slow  # type: ignore[method-assign]
    return scorer


class WideScorer(FakeScorer):
    """FakeScorer whose embeddings pass through a 20,000-wide float32 layer in torch, as a real encoder's do:
    the last digits of a long float32 reduction depend on how many threads torch splits it over."""

    def __init__(self) -> None:
        import torch

        super().__init__()
        rng = torch.Generator().manual_seed(0)
        self._layers = (torch.randn(64, 20_000, generator=rng), torch.randn(20_000, 64, generator=rng))

    def fingerprint(self) -> str:
        return "fake-wide-20000"

    def embed_samples(self, samples: Sequence[Sample]) -> np.ndarray:
        return self._wide(super().embed_samples(samples))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._wide(super().embed_texts(texts))

    def _wide(self, bags: np.ndarray) -> np.ndarray:
        import torch

        out = (torch.tanh(torch.from_numpy(bags) @ self._layers[0]) @ self._layers[1]).numpy()
        return out / np.linalg.norm(out, axis=1, keepdims=True)


register("scorer", "fake_wide")(WideScorer)


SIMULATED = {"seconds": 0.0}  # model latency slept in this process (benchmarks subtract it from wall time)


def _sleep(seconds: float) -> None:
    if seconds:
        start = time.perf_counter()
        time.sleep(seconds)
        SIMULATED["seconds"] += time.perf_counter() - start  # as slept (sleep overshoots a little)


@register("dataset", "fake_text")
def fake_text_dataset(targets: Sequence[str], broken: Sequence[str] = (), references: bool = True,
                      unreferenced: Sequence[str] = ()) -> Dataset:
    """Samples whose media is their target text (reference = target, unless ``references`` is
    false: a folder of photos has none); ``broken`` are file paths that cannot be read as images;
    ``unreferenced`` are samples without references in a split that needs them (skipped at load)."""
    samples = [EvalSample(f"t{i:03d}", t, (t,) if references else ()) for i, t in enumerate(targets)]
    samples += [EvalSample(str(p), Path(p), ("broken",)) for p in broken]
    samples += [EvalSample(f"u{i:03d}", t, ()) for i, t in enumerate(unreferenced)]
    return Dataset("fake_text", samples, need_references=bool(unreferenced))


@register("dataset", "fake_text_sized")
def fake_text_sized(n: int, words: int = 4, seed: int = 0) -> Dataset:
    """``n`` samples like :func:`fake_text`'s with random targets of ``words`` words (scale tests)."""
    rng = random.Random(seed)
    targets = [" ".join(rng.sample(WORDS, words)) for _ in range(n)]
    return Dataset("fake_text_sized", [EvalSample(f"s{i:06d}", t, (t,)) for i, t in enumerate(targets)])


class BrightnessVideoScorer:
    """A test-only stand-in for a custom video model (e.g. ViCLIP), plugged in by name: a video is
    'bright' or 'dark' by its mean frame level; texts by the words bright/dark."""

    higher_is_better = True

    def fingerprint(self) -> str:
        return "test-brightness-v1"

    def embed_samples(self, samples):
        from mils.media import sample_frames

        levels = [np.mean([np.asarray(f).mean() for f in sample_frames(s.media, 4)]) / 255 for s in samples]
        return np.array([[lv, 1 - lv] for lv in levels], np.float32)

    def embed_texts(self, texts):
        return np.array([[("bright" in t) * 1.0, ("dark" in t) * 1.0] for t in texts], np.float32)

    def similarity(self, sample_emb, text_emb):
        return sample_emb @ text_emb.T


@register("scorer", "test_video_brightness")
def brightness_video_scorer() -> BrightnessVideoScorer:
    return BrightnessVideoScorer()
