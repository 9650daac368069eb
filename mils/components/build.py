"""Build the components a run config names: plugins, the generator (with its response cache), the
scorer, the initial bank (generated once and cached, or read, or built from templates), the bank's
embeddings and any per-sample seed captions. Running them is :mod:`mils.run.runner`.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mils import registry
from mils.components.bank import (
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
from mils.config.profiles import IMAGENET_TEMPLATES
from mils.config.run_config import GeneratorConfig, RunConfig, ScorerConfig
from mils.engine.loop import PhaseTimer
from mils.engine.parsing import dedup_key
from mils.engine.prompts import template_for
from mils.engine.sampling import SamplingOptions, without_later_defaults
from mils.errors import InputError
from mils.files import content_hash, read_json
from mils.protocols import ConcurrentGenerator, Generator, Scorer, Workload


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
    from mils.components.response_cache import CachedGenerator, ResponseCache

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


@dataclass
class Components:
    """What a run's loop needs, loaded: the models, the bank and its embeddings (None when each
    sample starts from its own seed captions alone), and the seed captions by sample id."""

    generator: Generator
    scorer: Scorer
    bank: Bank
    bank_emb: np.ndarray | None
    seeds: dict[str, list[str]] | None = None
    seeds_alone: bool = False


def build_components(config: RunConfig, generator: Generator | None = None, scorer: Scorer | None = None,
                     timer: PhaseTimer | None = None) -> Components:
    """Load what ``config`` names (``generator``/``scorer``: already loaded ones to use instead);
    ``timer`` records model loading and bank encoding."""
    timer = timer or PhaseTimer()
    cache = config.cache_path()
    with timer("model_loading"):
        scorer = scorer or build_scorer(config.scorer)
        generator = generator or build_generator(config.generator, cache, workload_of(config))
    if config.schedule == "async" and not (isinstance(generator, ConcurrentGenerator) and generator.concurrent):
        raise InputError(f"schedule 'async' needs a generator that takes concurrent requests (backend 'vllm'); "
                         f"{type(generator).__name__} does not: use schedule 'lockstep'")
    seeds = load_seed_captions(config.bank.seed_captions) if config.bank.seed_captions else None
    if seeds is not None and config.bank.builtin == "none":  # each sample starts from its own seed captions
        texts = tuple(dict.fromkeys(t for ts in seeds.values() for t in ts))
        return Components(generator, scorer, Bank(texts, {"seed_captions": config.bank.seed_captions}), None,
                          seeds, seeds_alone=True)
    bank = build_bank(config, generator)
    with timer("bank_encoding"):
        bank_emb = bank_embeddings(scorer, bank, cache / "banks")
    return Components(generator, scorer, bank, bank_emb, seeds)
