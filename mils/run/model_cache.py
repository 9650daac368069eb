"""The process-wide model cache: models are loaded once per worker process and reused by every
Prefect task that runs there.

A worker (this process with the threads runner, or one Dask worker process owning one GPU)
keeps one (generator, scorer) pair per model configuration: the generator and scorer settings
alone, so a sweep over the bank, the loop or the dataset never reloads them. On top of that it
keeps one TaskRunner per bank (the bank's embeddings). The lock serialises model use inside a
process: one accelerator, one batch at a time.
"""

from __future__ import annotations

import json
import threading

from mils.components.build import build_generator, build_scorer
from mils.config.run_config import RunConfig
from mils.files import content_hash
from mils.protocols import Generator, Scorer
from mils.run.runner import TaskRunner

_MODELS: dict[str, Generator | Scorer] = {}
_RUNNERS: dict[tuple[str, str], TaskRunner] = {}
_LOCK = threading.RLock()


def _hash(parts: dict) -> str:
    return content_hash(json.dumps(parts, sort_keys=True, default=str), 16)


def _keys(config: RunConfig) -> tuple[str, str]:
    common = config.model_dump(include={"plugins", "cache_dir"})
    return (_hash({**common, "generator": config.generator.model_dump()}),
            _hash({**common, "scorer": config.scorer.model_dump()}))


def model_key(config: RunConfig) -> str:
    """What the loaded models depend on: the generator and the scorer settings (not the bank, the
    loop, the task or the dataset)."""
    return _hash(_keys(config))


def models_for(config: RunConfig) -> tuple[Generator, Scorer]:
    """The process's (generator, scorer) for ``config``; each is loaded on first use and shared by
    every config that names the same one."""
    generator_key, scorer_key = _keys(config)
    with _LOCK:
        if generator_key not in _MODELS:
            _MODELS[generator_key] = build_generator(config.generator, config.cache_path())
        if scorer_key not in _MODELS:
            _MODELS[scorer_key] = build_scorer(config.scorer)
        return _MODELS[generator_key], _MODELS[scorer_key]


def runner_for(config: RunConfig) -> TaskRunner:
    """The process's TaskRunner for these models and this bank, with ``config``'s loop options."""
    key = (model_key(config), _hash(config.model_dump(include={"bank", "task"})))
    with _LOCK:
        if key not in _RUNNERS:
            generator, scorer = models_for(config)
            _RUNNERS[key] = TaskRunner(config, generator=generator, scorer=scorer)
        runner = _RUNNERS[key]
        runner.set_loop(config)
        return runner


def model_lock() -> threading.RLock:
    return _LOCK
