"""Samples that advance on their own: the ``async`` schedule, at the scale of a serving engine.

The lockstep loop (:meth:`Optimiser.run`) sends one prompt per active sample, waits for every reply,
scores them all, and only then starts the next step: the LLM idles while the scorer works, and a
step lasts as long as its slowest reply. Here every sample's next request goes out as soon as its
last reply is scored, so an engine that batches requests as they arrive (vLLM, SGLang, any
OpenAI-compatible server) always has work:

- at most ``in_flight`` requests are out at once (a pool of that many request threads; the samples
  waiting for one are a queue, not threads), so 5,000 samples need no 5,000 threads;
- replies that arrive close together are parsed and scored in one scorer call (up to
  ``score_batch`` replies, waiting at most ``score_wait`` seconds after the first), on this thread,
  while the request threads keep the engine's queue full.

Prompts, seeds and scores are per sample, so the results equal the lockstep loop's whenever the
generator and the scorer answer a sample the same way whatever else they are given (tested on the
fake components; vLLM's per-request seeds: tests/vllm). A request's LLM seconds in the cost ledger
are its own wall time, queueing included, so they overlap.
"""

from __future__ import annotations

import queue
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from mils.errors import ComponentError
from mils.loop import Arrival, Optimiser, SampleResult
from mils.protocols import Sample

DEFAULT_IN_FLIGHT = 256  # for a generator that states no concurrency of its own


def in_flight_of(generator) -> int:
    """The requests a generator takes at once: its own ``max_in_flight`` (the openai backend's
    ``max_concurrency``), else :data:`DEFAULT_IN_FLIGHT`."""
    return int(getattr(generator, "max_in_flight", None) or DEFAULT_IN_FLIGHT)


def run_async(optimiser: Optimiser, samples: Sequence[Sample], progress=None, in_flight: int | None = None,
              score_batch: int = 64, score_wait: float = 0.02) -> list[SampleResult]:
    """Step 0 for all ``samples`` at once, then every sample through its steps independently, at most
    ``in_flight`` requests out; ``progress`` is an optional tqdm bar (one tick per sample-step)."""
    states = optimiser.initial(samples)
    last = optimiser.options.effective_steps
    if last < 1 or not states:
        return optimiser.results(states)
    arrived: queue.Queue = queue.Queue()

    def ask(state, step: int) -> None:
        try:
            prompt, seed = optimiser.request(state, step)
            start = time.perf_counter()
            replies = optimiser.generator.generate([prompt], [seed])
            if len(replies) != 1:
                raise ComponentError(f"generator returned {len(replies)} replies for 1 prompt")
            arrived.put(Arrival(state, step, prompt, replies[0], time.perf_counter() - start))
        except BaseException as err:  # noqa: BLE001  (handed to the driver, raised there)
            arrived.put(err)

    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max(1, min(in_flight or in_flight_of(optimiser.generator), len(states))),
                            thread_name_prefix="mils-request") as pool:
        pending = len(states)
        for state in states:
            pool.submit(ask, state, 1)
        while pending:
            batch = _gather(arrived, score_batch, score_wait)
            pending -= len(batch)
            failures = [b for b in batch if isinstance(b, BaseException)]
            error = error or (failures[0] if failures else None)
            ready = [b for b in batch if isinstance(b, Arrival)]
            if error is not None:  # stop asking; let the requests out finish
                continue
            optimiser.finish(ready)
            for a in ready:
                if a.state.stopped_early_at is None and a.step < last:
                    pool.submit(ask, a.state, a.step + 1)
                    pending += 1
            if progress is not None and ready:
                progress.update(len(ready))
                progress.set_postfix(step=max(a.step for a in ready), best=f"{ready[-1].state.history[-1].best_score:.3f}")
    if error is not None:
        raise error
    return optimiser.results(states)


def _gather(arrived: queue.Queue, most: int, wait: float) -> list:
    """The next reply (waiting for it), then those that arrive within ``wait`` seconds, up to ``most``."""
    batch = [arrived.get()]
    deadline = time.monotonic() + wait
    while len(batch) < most:
        try:
            batch.append(arrived.get_nowait() if time.monotonic() >= deadline
                         else arrived.get(timeout=deadline - time.monotonic()))
        except queue.Empty:
            break
    return batch
