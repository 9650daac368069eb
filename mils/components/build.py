"""Build the components a run's plan names (:mod:`mils.components.plan`): the generator (with its
response cache), the scorer, the initial bank (generated once and cached, or read, or built from
templates), the bank's embeddings and any per-sample seed captions. Running them is :mod:`mils.run.runner`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mils import registry
from mils.components.bank import (
    AUDIO_BANK_PROMPT,
    BANK_PROMPT,
    Bank,
    bank_cache_file,
    bank_embeddings,
    generate_bank,
    load_bank,
    official_subsample,
    read_bank_lines,
    read_labels,
    save_bank,
    template_bank,
)
from mils.components.bank_index import BankIndex, build_index
from mils.components.plan import BankPlan, GeneratorPlan, RunPlan, ScorerPlan
from mils.config.profiles import IMAGENET_TEMPLATES
from mils.engine.loop import PhaseTimer
from mils.engine.parsing import dedup_key
from mils.errors import InputError
from mils.files import read_json
from mils.protocols import CandidateScorer, ConcurrentGenerator, Generator, Scorer, Workload


def build_generator(plan: GeneratorPlan, workload: Workload | None = None) -> Generator:
    """``workload``: what the run will ask of the LLM, for a backend whose factory takes it (vLLM
    sizes its context and KV cache from it)."""
    import mils.generators  # noqa: F401  (registers the built-in generators)

    sized = {"workload": workload} if workload is not None and plan.takes_workload else {}
    generator = registry.create("generator", plan.backend, cache_dir=plan.cache_dir, **plan.arguments, **sized)
    if not plan.cached:
        return generator
    from mils.components.response_cache import CachedGenerator, ResponseCache

    return CachedGenerator(generator, ResponseCache(plan.cache_dir), plan.identity, plan.sampling)


def build_scorer(plan: ScorerPlan) -> Scorer:
    import mils.scorers  # noqa: F401  (registers the built-in scorers)

    return registry.create("scorer", plan.name, **plan.options)


def ensure_generated_bank(plan: BankPlan, generator: Generator) -> tuple[Path, bool]:
    """The generated bank's file (written with its provenance sidecar when missing); True when it
    was generated now, False when the cached file was reused."""
    path, recipe = plan.generated, plan.config.generate
    if path is None:
        raise InputError("the config's bank is not a generated one (bank.generate is not set)")
    if path.is_file():
        return path, False
    if recipe.labels:
        names = read_labels(recipe.labels)
    elif recipe.modality == "audio":
        raise InputError("an audio bank recipe needs bank.generate.labels (e.g. AudioSet's class_labels_indices.csv)")
    else:
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

        names = list(IMAGENET_CLASSNAMES)
    names = names[: recipe.classes] if recipe.classes else names
    prompt = AUDIO_BANK_PROMPT if recipe.modality == "audio" else BANK_PROMPT
    bank = generate_bank(generator, names, recipe.per_class, seed=recipe.seed, batch_size=plan.batch_size,
                         generator_name=plan.generator_model, prompt=prompt)
    return save_bank(bank, path), True


def build_bank(plan: BankPlan, generator: Generator | None = None) -> Bank:
    """The initial bank ``plan`` names (a generated one needs ``generator`` when not cached)."""
    cfg = plan.config
    key = dedup_key(cfg.dedup)
    if cfg.path is not None:
        bank = load_bank(Path(cfg.path).expanduser(), key)
    elif plan.generated is not None:
        if generator is None and not plan.generated.is_file():
            raise InputError("bank.generate: the bank is not generated yet and no generator was given")
        bank = load_bank(plan.generated if generator is None else ensure_generated_bank(plan, generator)[0])
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


@dataclass
class Components:
    """What a run's loop needs, loaded: the models, the initial bank (None when each sample is its own
    initial candidate: text-to-image) and its embeddings (None when the samples start from their seed
    captions alone, or the scorer scores each sample's candidates itself: a CandidateScorer), and the
    seed captions by sample id."""

    generator: Generator
    scorer: Scorer | CandidateScorer
    bank: Bank | None
    bank_emb: np.ndarray | None
    seeds: dict[str, list[str]] | None = None
    seeds_alone: bool = False
    bank_index: BankIndex | None = None  # bank.index hnsw: each sample's step-0 shortlist


def build_components(plan: RunPlan, generator: Generator | None = None, scorer: Scorer | CandidateScorer | None = None,
                     timer: PhaseTimer | None = None) -> Components:
    """Load what ``plan`` names (``generator``/``scorer``: already loaded ones to use instead);
    ``timer`` records model loading and bank encoding."""
    timer = timer or PhaseTimer()
    with timer("model_loading"):
        scorer = scorer or build_scorer(plan.scorer)
        generator = generator or build_generator(plan.generator, plan.workload)
    if plan.schedule.kind == "async" and not (isinstance(generator, ConcurrentGenerator) and generator.concurrent):
        raise InputError(f"schedule 'async' needs a generator that takes concurrent requests (backend 'vllm'); "
                         f"{type(generator).__name__} does not: use schedule 'lockstep'")
    if not plan.task.uses_bank:  # each sample is its own initial candidate
        return Components(generator, scorer, None, None)
    seed_file = plan.bank.config.seed_captions
    seeds = load_seed_captions(seed_file) if seed_file else None
    if seeds is not None and plan.bank.config.builtin == "none":  # each sample starts from its own seed captions
        texts = tuple(dict.fromkeys(t for ts in seeds.values() for t in ts))
        return Components(generator, scorer, Bank(texts, {"seed_captions": seed_file}), None, seeds, seeds_alone=True)
    bank = build_bank(plan.bank, generator)
    if not isinstance(scorer, Scorer):  # a CandidateScorer scores the bank with each sample, at step 0
        return Components(generator, scorer, bank, None, seeds)
    indexed = plan.bank.config.index == "hnsw"
    with timer("bank_encoding"):
        cache = bank_cache_file(scorer, bank, plan.bank.embeddings_dir)  # the bank's hash: once (a second at 3M)
        bank_emb = bank_embeddings(scorer, bank, cache, mapped=indexed)
        index = build_index(bank_emb, plan.bank.config.shortlist, cache and cache.with_suffix(".hnsw.faiss")) \
            if indexed else None
    return Components(generator, scorer, bank, bank_emb, seeds, bank_index=index)
