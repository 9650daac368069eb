"""Samples that advance on their own: the ``async`` schedule.

The lockstep loop (:meth:`Optimiser.run`) sends one prompt per active sample, waits for every reply,
scores them all, and only then starts the next step: the LLM idles while the scorer works, and a
step lasts as long as its slowest reply. Here each sample runs its own steps in a thread: its next
prompt goes out as soon as its last reply is scored, so an engine that batches requests as they
arrive (vLLM's server, see :mod:`mils.generators.vllm_server`) always has work. Prompts, seeds
and scores are per sample, so the results equal the lockstep loop's whenever the generator and the
scorer answer a sample the same way whatever else they are given (tested on the fake components;
vLLM's per-request seeds: tests/vllm). Scorer calls are serialised; the per-step LLM seconds in the
cost ledger are each request's own wall time, queueing included, so they overlap.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from mils.loop import Optimiser, SampleResult
from mils.protocols import Sample


def run_async(optimiser: Optimiser, samples: Sequence[Sample], progress=None,
              concurrency: int | None = None) -> list[SampleResult]:
    """Step 0 for all ``samples`` at once, then every sample through its steps independently, at most
    ``concurrency`` (default: all) in flight; ``progress`` is an optional tqdm bar."""
    states = optimiser.initial(samples)

    def advance(state) -> None:
        for step in range(1, optimiser.options.effective_steps + 1):
            optimiser.step([state], step)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(step=step, best=f"{state.history[-1].best_score:.3f}")

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency or len(states), len(states)))) as pool:
        for future in [pool.submit(advance, state) for state in states]:
            future.result()  # the first error is raised once every sample has stopped
    return optimiser.results(states)
