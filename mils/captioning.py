"""Build the components a config names and caption a list of samples with them.

This is the entry point that the CLI, the demo and (later) the Prefect tasks wrap.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from mils import registry
from mils.async_loop import run_async
from mils.bank import (
    AUDIO_BANK_PROMPT,
    BANK_PROMPT,
    Bank,
    bank_embeddings,
    generate_bank,
    load_bank,
    official_subsample,
    read_bank_lines,
    read_labels,
    save_bank,
    template_bank,
)
from mils.config import GeneratorConfig, RunConfig, ScorerConfig, read_json
from mils.errors import InputError, MissingDependencyError
from mils.files import content_hash
from mils.loop import LoopOptions, Optimiser, PhaseTimer, SampleResult
from mils.media import MediaError, media_problem
from mils.parsing import dedup_key
from mils.profiles import IMAGENET_TEMPLATES
from mils.prompts import template_for
from mils.protocols import ConcurrentGenerator, Generator, Sample, Scorer, Workload
from mils.sampling import SamplingOptions, without_later_defaults

log = logging.getLogger(__name__)


def import_plugins(modules: Sequence[str]) -> None:
    """Import the modules a config names, so their components are registered."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise MissingDependencyError(f"cannot import plugin module {module!r} named in the config: {err}") from err


def build_generator(cfg: GeneratorConfig, cache_dir: Path, workload: Workload | None = None) -> Generator:
    """``workload``: what the run will ask of the LLM, for a backend whose factory takes it (vLLM
    sizes its context and KV cache from it)."""
    import mils.generators  # noqa: F401  (registers the built-in generators)

    options = without_later_defaults(cfg.model_dump(exclude={"backend", "options", "cache", "price"}))
    if workload is not None and takes_workload(cfg.backend):
        options["workload"] = workload
    generator = registry.create("generator", cfg.backend, cache_dir=cache_dir, **options, **cfg.options)
    if not (cfg.cache if cfg.cache is not None else cfg.backend in REMOTE_BACKENDS):
        return generator
    from mils.response_cache import CachedGenerator, ResponseCache

    identity = json.dumps([cfg.backend, cfg.model, {k: v for k, v in cfg.options.items() if k in IDENTITY_OPTIONS}])
    sampling = cfg.model_dump(include=set(SamplingOptions.model_fields))
    return CachedGenerator(generator, ResponseCache(cache_dir), identity, sampling)


REMOTE_BACKENDS = ("openai",)  # the response cache is on by default for these
IDENTITY_OPTIONS = ("base_url", "system_prompt", "reasoning_tag", "server", "served_name")  # they shape a reply


def takes_workload(backend: str) -> bool:
    import mils.generators  # noqa: F401  (registers the built-in generators)

    return "workload" in inspect.signature(registry.get_factory("generator", backend)).parameters


def workload_of(config: RunConfig) -> Workload:
    """The longest prompt ``config``'s loop can build (its template with no candidates in it, plus
    ``keep`` candidates of at most ``max_words`` words; a task's own slots, e.g. the prompt being
    rewritten, count as one more line each) and how many prompts are in flight at once."""
    template = template_for(config.task, config.prompts)
    extras = sorted(set(re.findall(r"(?<!\{)\{(\w+)\}(?!\})", template.text)) - {"descriptions", "requested_number"})
    frame = template.render([], config.loop.requested, **dict.fromkeys(extras, ""))
    return Workload(frame, config.loop.keep + len(extras), config.loop.max_words, config.batch_size)


def build_scorer(cfg: ScorerConfig) -> Scorer:
    import mils.scorers  # noqa: F401  (registers the built-in scorers)

    return registry.create("scorer", cfg.name, **cfg.options)


def generated_bank_path(config: RunConfig) -> Path:
    """Where the bank that ``config.bank.generate`` describes is cached: a hash of the recipe, the
    prompt and the generator settings, so the same recipe with the same LLM is generated once."""
    recipe = config.bank.generate
    if recipe is None:
        raise InputError("the config's bank is not a generated one (bank.generate is not set)")
    prompt = AUDIO_BANK_PROMPT if recipe.modality == "audio" else BANK_PROMPT
    generator = without_later_defaults(config.generator.model_dump(exclude={"device", "dtype"}))
    payload = json.dumps({"recipe": recipe.model_dump(), "prompt": prompt, "plugins": config.plugins,
                          "generator": generator}, sort_keys=True)
    return config.cache_path() / "banks" / f"generated-{content_hash(payload, 16)}.txt"


def ensure_generated_bank(config: RunConfig, generator: Generator) -> tuple[Path, bool]:
    """The generated bank's file (written with its provenance sidecar when missing); True when it
    was generated now, False when the cached file was reused."""
    path = generated_bank_path(config)
    if path.is_file():
        return path, False
    recipe = config.bank.generate
    if recipe.labels:
        names = read_labels(recipe.labels)
    elif recipe.modality == "audio":
        raise InputError("an audio bank recipe needs bank.generate.labels (e.g. AudioSet's class_labels_indices.csv)")
    else:
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

        names = list(IMAGENET_CLASSNAMES)
    names = names[: recipe.classes] if recipe.classes else names
    prompt = AUDIO_BANK_PROMPT if recipe.modality == "audio" else BANK_PROMPT
    bank = generate_bank(generator, names, recipe.per_class, seed=recipe.seed, batch_size=config.batch_size,
                         generator_name=config.generator.model, prompt=prompt)
    return save_bank(bank, path), True


def build_bank(config: RunConfig, generator: Generator | None = None) -> Bank:
    """The initial bank ``config.bank`` names (a generated one needs ``generator`` when not cached)."""
    cfg = config.bank
    key = dedup_key(cfg.dedup)
    if cfg.path is not None:
        bank = load_bank(Path(cfg.path).expanduser(), key)
    elif cfg.generate is not None:
        if generator is None and not generated_bank_path(config).is_file():
            raise InputError("bank.generate: the bank is not generated yet and no generator was given")
        bank = load_bank(generated_bank_path(config) if generator is None else ensure_generated_bank(config, generator)[0])
    else:
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

        bank = template_bank(IMAGENET_CLASSNAMES, IMAGENET_TEMPLATES)
    if cfg.subsample and cfg.subsample_sampler == "official":
        lines = read_bank_lines(Path(cfg.path).expanduser()) if cfg.path is not None else bank.texts
        return official_subsample(lines, cfg.subsample, cfg.subsample_seed, key, bank.provenance)
    return bank.subsample(cfg.subsample, cfg.subsample_seed) if cfg.subsample else bank


def load_seed_captions(path: str | Path) -> dict[str, list[str]]:
    """``bank.seed_captions``: JSON sample id -> caption or list of captions (e.g. a VLM's output,
    the id -> text JSON that `mils compare` also reads)."""
    raw = read_json(path, "bank.seed_captions")
    if not isinstance(raw, dict):
        raise InputError(f"bank.seed_captions: {path} must map sample id -> caption (or a list of captions)")
    seeds = {}
    for key, value in raw.items():
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise InputError(f"bank.seed_captions: {path}: the value for {key!r} is not a caption or a list of captions")
        seeds[str(key)] = [t.strip() for t in texts if t.strip()]
    return seeds


def check_media(samples: Sequence[Sample]) -> tuple[list[Sample], dict[str, str]]:
    """Split samples into readable ones and {sample id: error} for the rest (checked up front,
    so one bad file never costs the batch it would have run in)."""
    good, bad = [], {}
    for sample in samples:
        problem = media_problem(sample.media) if isinstance(sample.media, Path) else None
        if problem:  # in-memory media (not a Path) has nothing to read
            bad[sample.id] = problem
        else:
            good.append(sample)
    return good, bad


@dataclass
class CaptionRun:
    results: list[SampleResult]
    failed: dict[str, str]
    timings: dict[str, float]
    bank: Bank
    config: RunConfig


class Captioner:
    """Loads the models once; caption as many sample lists as you like with them."""

    def __init__(self, config: RunConfig, generator: Generator | None = None, scorer: Scorer | None = None):
        self.config = config
        self.timer = PhaseTimer()
        import_plugins(config.plugins)
        cache = config.cache_path()
        with self.timer("model_loading"):
            self.scorer = scorer or build_scorer(config.scorer)
            self.generator = generator or build_generator(config.generator, cache, workload_of(config))
        if config.schedule == "async" and not (isinstance(self.generator, ConcurrentGenerator) and self.generator.concurrent):
            raise InputError(f"schedule 'async' needs a generator that takes concurrent requests (backend 'vllm'); "
                             f"{type(self.generator).__name__} does not: use schedule 'lockstep'")
        self.seeds = load_seed_captions(config.bank.seed_captions) if config.bank.seed_captions else None
        self.seeds_alone = self.seeds is not None and config.bank.builtin == "none"
        if self.seeds_alone:  # each sample starts from its own seed captions: no shared bank to embed
            texts = tuple(dict.fromkeys(t for ts in self.seeds.values() for t in ts))
            self.bank, self.bank_emb = Bank(texts, {"seed_captions": config.bank.seed_captions}), None
        else:
            self.bank = build_bank(config, self.generator)
            with self.timer("bank_encoding"):
                self.bank_emb = bank_embeddings(self.scorer, self.bank, cache / "banks")
        self.set_loop(config)

    def set_loop(self, config: RunConfig) -> None:
        """Use ``config``'s loop options (steps, top-K, ...) with the already loaded models."""
        self.config = config
        own = (lambda s: self.seeds.get(s.id, [])) if self.seeds is not None else None
        self.optimiser = Optimiser(
            self.generator, self.scorer, template_for(config.task, config.prompts), self.bank.texts, self.bank_emb,
            config.loop, self.timer, initial_texts=own if self.seeds_alone else None,
            extra_initial=None if self.seeds_alone else own,
        )

    def _run_halving(self, batch: Sequence[Sample], progress) -> tuple[list[SampleResult], dict[str, str]]:
        """One batch; out of memory, its halves (down to single samples, then the sample fails).
        A sample's result does not depend on its batch, so what succeeds equals a fault-free run."""
        try:
            if self.config.schedule == "async":
                return run_async(self.optimiser, batch, progress), {}
            return self.optimiser.run(batch, progress), {}
        except MediaError as err:  # one sample's file failed to decode past the up-front check
            if len(batch) == 1:
                return [], {batch[0].id: str(err)}
            log.warning("a sample's media failed to decode in a batch of %d (%s): running them one by one", len(batch), err)
            done, failed = [], {}
            for sample in batch:
                results, errors = self._run_halving([sample], progress)
                done, failed = done + results, {**failed, **errors}
            return done, failed
        except Exception as err:
            if not out_of_memory(err):
                raise
            if len(batch) == 1:
                return [], {batch[0].id: f"out of memory even alone: {err}"}
            log.warning("out of memory on a batch of %d (%s): retrying it as two halves", len(batch), err)
            _free_gpu_cache()
            first, failed_first = self._run_halving(batch[: len(batch) // 2], progress)
            second, failed_second = self._run_halving(batch[len(batch) // 2 :], progress)
            return first + second, {**failed_first, **failed_second}

    def caption(self, samples: Sequence[Sample], progress: bool = True, reporter=None) -> CaptionRun:
        """``reporter``: instead of a terminal bar, any object with tqdm's ``update(n)`` and
        ``set_postfix(step=, best=)`` (the orchestration layer logs steps with it)."""
        good, failed = check_media(samples)
        if self.seeds_alone:  # nothing to start from without a seed caption
            for sample in [s for s in good if not self.seeds.get(s.id)]:
                failed[sample.id] = (f"no caption for {sample.id} in {self.config.bank.seed_captions} (bank: builtin "
                                     "'none' with seed_captions starts each sample from its seed captions alone)")
            good = [s for s in good if s.id not in failed]
        for sample_id, error in failed.items():
            log.error("skipping %s: %s", sample_id, error)
        steps = self.config.loop.effective_steps
        with tqdm(total=len(good) * max(steps, 1), desc="MILS", unit="sample-step",
                  disable=not progress or reporter is not None) as bar:
            start = time.perf_counter()
            results = []
            for i in range(0, len(good), self.config.batch_size):
                done, oom = self._run_halving(good[i : i + self.config.batch_size], (reporter or bar) if steps else None)
                results += done
                failed.update(oom)
            self.timer.seconds["loop_total"] += time.perf_counter() - start
            if not steps:
                bar.update(len(good))
        return CaptionRun(results, failed, dict(self.timer.seconds), self.bank, self.config)


def _free_gpu_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory(err: BaseException) -> bool:
    """A CUDA (or host) out-of-memory error, whatever layer raised it."""
    import torch

    return isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)) or "out of memory" in str(err).lower()


def loop_overhead(timings: dict[str, float]) -> float:
    """Share of the loop's wall time not spent in the models (the 'everything else')."""
    model_time = sum(timings.get(k, 0.0) for k in ("sample_embedding", "bank_scoring", "generation", "candidate_scoring"))
    total = timings.get("loop_total", 0.0)
    return float(np.clip((total - model_time) / total, 0, 1)) if total else float("nan")


__all__ = ["CaptionRun", "Captioner", "LoopOptions", "build_bank", "build_generator", "build_scorer", "check_media",
           "workload_of"]
