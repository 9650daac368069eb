"""The process-wide model cache: models are loaded once per worker process and reused by every
Prefect task that runs there.

A worker (this process with the threads runner, or one Dask worker process owning one GPU)
keeps one (generator, scorer) pair per model configuration: the generator and scorer settings
alone, so a sweep over the bank, the loop or the dataset never reloads them. On top of that it
keeps one TaskRunner per bank (the bank's embeddings). The lock serialises model use inside a
process: one accelerator, one batch at a time.
"""

from __future__ import annotations

import os
import threading

from mils.components.build import build_generator, build_scorer
from mils.components.plan import RunPlan
from mils.errors import InputError
from mils.protocols import Generator, Scorer
from mils.run.runner import TaskRunner

_MODELS: dict[str, Generator | Scorer] = {}
_RUNNERS: dict[tuple[str, str, str], TaskRunner] = {}
_LOCK = threading.RLock()


def models_for(plan: RunPlan) -> tuple[Generator, Scorer]:
    """The process's (generator, scorer) for ``plan``; each is loaded on first use and shared by
    every run that names the same one (the same settings, plugins and cache folder)."""
    with _LOCK:
        if plan.generator.key not in _MODELS:
            _MODELS[plan.generator.key] = build_generator(plan.generator)  # shared by runs of any workload
        if plan.scorer.key not in _MODELS:
            _MODELS[plan.scorer.key] = build_scorer(plan.scorer)
        return _MODELS[plan.generator.key], _MODELS[plan.scorer.key]


INTRA_OP_THREADS = "MILS_INTRA_OP_THREADS"


def intra_op_threads() -> int:
    """The CPU threads torch computes with, the same in every executor: the cores this process may use
    (``MILS_INTRA_OP_THREADS`` overrides). A Dask worker starts with OMP_NUM_THREADS=1 and the flow's
    process with every core; float32 reductions split another way give scores that differ in the
    7th digit, and a near-tie can flip a kept caption."""
    value = os.environ.get(INTRA_OP_THREADS)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise InputError(f"{INTRA_OP_THREADS} is a whole number of threads >= 1, not {value!r}")
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def runner_for(plan: RunPlan) -> TaskRunner:
    """The process's TaskRunner for these models and this bank, with ``plan``'s loop options; torch
    computes with :func:`intra_op_threads` threads whatever the runner."""
    import torch

    if torch.get_num_threads() != intra_op_threads():
        torch.set_num_threads(intra_op_threads())
    with _LOCK:
        if plan.runner_key not in _RUNNERS:
            generator, scorer = models_for(plan)
            _RUNNERS[plan.runner_key] = TaskRunner(plan, generator=generator, scorer=scorer)
        runner = _RUNNERS[plan.runner_key]
        runner.set_loop(plan)
        return runner


def model_lock() -> threading.RLock:
    return _LOCK
