"""Caption (optimise) lists of samples with the components a config names: media checked up front,
batches halved on out-of-memory, the lockstep or async schedule. Building the components is
:mod:`mils.components.build`; this is the entry point that the CLI, the demo and the Prefect tasks wrap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from mils.components.bank import Bank
from mils.components.build import build_components
from mils.components.plan import RunPlan
from mils.config.run_config import RunConfig
from mils.engine.loop import LoopOptions, Optimiser, PhaseTimer, SampleResult
from mils.engine.schedule import run_async
from mils.media import MediaError, sample_media_problem
from mils.protocols import Generator, ImageMaker, Sample, Scorer
from mils.storage.results import ResultStore

log = logging.getLogger(__name__)


def check_media(samples: Sequence[Sample]) -> tuple[list[Sample], dict[str, str]]:
    """Split samples into readable ones and {sample id: error} for the rest (checked up front,
    so one bad file never costs the batch it would have run in)."""
    good, bad = [], {}
    for sample in samples:
        problem = sample_media_problem(sample.media)
        if problem:
            bad[sample.id] = problem
        else:
            good.append(sample)
    return good, bad


@dataclass
class RunnerOutput:
    results: list[SampleResult]
    failed: dict[str, str]
    timings: dict[str, float]
    bank: Bank | None  # None: each sample was its own initial candidate (text-to-image)
    config: RunConfig


class TaskRunner:
    """Builds the components of a plan once (:func:`mils.components.build.build_components`); run as many
    sample lists as you like with them. A config becomes a plan with :func:`mils.components.plan.plan_run`."""

    def __init__(self, plan: RunPlan, generator: Generator | None = None, scorer: Scorer | None = None):
        self.timer = PhaseTimer()
        parts = build_components(plan, generator, scorer, self.timer)
        self.generator, self.scorer, self.bank, self.bank_emb = parts.generator, parts.scorer, parts.bank, parts.bank_emb
        self.seeds, self.seeds_alone, self.bank_index = parts.seeds, parts.seeds_alone, parts.bank_index
        self.set_loop(plan)

    def set_loop(self, plan: RunPlan) -> None:
        """Use ``plan``'s loop options (steps, top-K, ...) and schedule with the already loaded models."""
        self.plan = plan
        spec = plan.task
        own = (lambda s: self.seeds.get(s.id, [])) if self.seeds is not None else None
        if not spec.uses_bank:  # the sample (a prompt) is its own initial candidate
            initial, beside_bank = spec.own_candidates, None
        else:  # the bank, and beside it the sample's seed captions and the task's own candidates
            initial = own if self.seeds_alone else None
            parts = [f for f in ((None if self.seeds_alone else own), spec.candidates) if f is not None]
            beside_bank = (lambda s: [t for f in parts for t in f(s)]) if parts else None
        self.optimiser = Optimiser(
            self.generator, self.scorer, plan.template, self.bank.texts if self.bank else (), self.bank_emb,
            plan.loop, self.timer, initial_texts=initial, extra_initial=beside_bank,
            prompt_extra=spec.sample_slots if spec.sample_slot or spec.slots else None, bank_index=self.bank_index,
        )

    @property
    def config(self) -> RunConfig:
        return self.plan.config

    def _run_halving(self, batch: Sequence[Sample], progress, on_done=None) -> tuple[list[SampleResult], dict[str, str]]:
        """One batch; out of memory, its halves (down to single samples, then the sample fails).
        A sample's result does not depend on its batch, so what succeeds equals a fault-free run."""
        try:
            schedule = self.plan.schedule
            if schedule.kind == "async":  # the whole list at once: in_flight bounds the requests, batch_size step 0
                return run_async(self.optimiser, batch, progress, schedule.in_flight, schedule.score_batch,
                                 schedule.score_wait, schedule.batch_size, on_done), {}
            return self.optimiser.run(batch, progress), {}
        except MediaError as err:  # one sample's file failed to decode past the up-front check
            if len(batch) == 1:
                return [], {batch[0].id: str(err)}
            log.warning("a sample's media failed to decode in a batch of %d (%s): running them one by one", len(batch), err)
            done, failed = [], {}
            for sample in batch:
                results, errors = self._run_halving([sample], progress, on_done)
                done, failed = done + results, {**failed, **errors}
            return done, failed
        except Exception as err:
            if not out_of_memory(err):
                raise
            if len(batch) == 1:
                return [], {batch[0].id: f"out of memory even alone: {err}"}
            log.warning("out of memory on a batch of %d (%s): retrying it as two halves", len(batch), err)
            _free_gpu_cache()
            first, failed_first = self._run_halving(batch[: len(batch) // 2], progress, on_done)
            second, failed_second = self._run_halving(batch[len(batch) // 2 :], progress, on_done)
            return first + second, {**failed_first, **failed_second}

    def run(self, samples: Sequence[Sample], progress: bool = True, reporter=None, on_done=None,
            checked: bool = False) -> RunnerOutput:
        """Cut ``samples`` into batches (one batch under the async schedule) and run them.
        ``reporter``: instead of a terminal bar, any object with tqdm's ``update(n)`` and
        ``set_postfix(step=, best=)`` (the orchestration layer logs steps with it). ``on_done``:
        called with each result as soon as its sample finishes (the async schedule runs the whole
        list as one batch, so the results folder gets each one then, not at the end). Each sample's
        media is checked first (``checked``: the caller did, e.g. a benchmark's flow before it cut the shards):
        one that cannot be read fails alone, before any batch is cut."""
        good, failed = (list(samples), {}) if checked else check_media(samples)
        if self.seeds_alone:  # nothing to start from without a seed caption
            for sample in [s for s in good if not self.seeds.get(s.id)]:
                failed[sample.id] = (f"no caption for {sample.id} in {self.plan.bank.config.seed_captions} (bank: builtin "
                                     "'none' with seed_captions starts each sample from its seed captions alone)")
            good = [s for s in good if s.id not in failed]
        for sample_id, error in failed.items():
            log.error("skipping %s: %s", sample_id, error)
        steps = self.plan.loop.effective_steps
        with tqdm(total=len(good) * max(steps, 1), desc="MILS", unit="sample-step",
                  disable=not progress or reporter is not None) as bar:
            start = time.perf_counter()
            results = []
            schedule = self.plan.schedule
            size = max(len(good), 1) if schedule.kind == "async" else schedule.batch_size
            for i in range(0, len(good), size):
                done, oom = self._run_halving(good[i : i + size], (reporter or bar) if steps else None, on_done)
                results += done
                failed.update(oom)
                if on_done is not None and schedule.kind != "async":
                    for result in done:
                        on_done(result)
            self.timer.seconds["loop_total"] += time.perf_counter() - start
            if not steps:
                bar.update(len(good))
        return RunnerOutput(results, failed, dict(self.timer.seconds), self.bank, self.config)


def run_into_folder(runner: TaskRunner, samples: Sequence[Sample], folder: Path | None = None, progress: bool = False,
                    reporter=None, checked: bool = False) -> RunnerOutput:
    """Run the samples that ``folder`` (default: the plan's results folder) has no result for into
    it: each sample's media checked (unless ``checked``), each result written as soon as its sample finishes, with its
    step images for a task whose candidates become images (written first: a result on disk has its
    images), each failure recorded. Every run of the suite writes through here (a benchmark's
    shards, `mils caption`, the image tasks)."""
    store = ResultStore(folder or runner.plan.results_dir, runner.plan.scorer.record)
    todo = [s for s in samples if not store.has(s.id)]
    by_id = {s.id: s for s in todo}
    images = runner.plan.task.images and isinstance(runner.scorer, ImageMaker)

    def done(result: SampleResult) -> None:
        if images:
            sample = by_id[result.sample_id]
            store.write_images(result, lambda text: runner.scorer.image_of(sample, text))
        store.write(result)

    run = runner.run(todo, progress, reporter=reporter, on_done=done, checked=checked)
    for sample_id, error in run.failed.items():
        store.write_failure(sample_id, error)
    return run


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


__all__ = ["RunnerOutput", "TaskRunner", "LoopOptions", "check_media", "run_into_folder"]
