"""Samples that advance on their own: the ``async`` schedule, at the scale of a serving engine.

The lockstep loop (:meth:`Optimiser.run`) sends one prompt per active sample, waits for every reply,
scores them all, and only then starts the next step: the LLM idles while the scorer works, and a
step lasts as long as its slowest reply. Here every sample's next request goes out as soon as its
last reply is scored, so an engine that batches requests as they arrive (vLLM, SGLang, any
OpenAI-compatible server) always has work:

- at most ``in_flight`` requests are out at once; the samples waiting for one are a queue. A
  generator with ``submit(prompt, seed) -> Future`` (the openai and vllm-server backends: one
  asyncio loop for all their requests) is handed each request as is, so 5,000 samples need no
  thread per sample or per request; any other concurrent generator gets a pool of ``in_flight``
  threads, each calling ``generate`` with one prompt;
- replies that arrive close together are parsed and scored in one scorer call (up to
  ``score_batch`` replies, waiting at most ``score_wait`` seconds after the first), on the calling
  thread, while the requests already out keep the engine busy.

Prompts, seeds and scores are per sample, so the results equal the lockstep loop's whenever the
generator and the scorer answer a sample the same way whatever else they are given (tested on the
fake components; vLLM's per-request seeds: tests/vllm). A request's LLM seconds in the cost ledger
are its own wall time, queueing included, so they overlap.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence

from mils.errors import ComponentError
from mils.loop import Arrival, Optimiser, SampleResult
from mils.protocols import Sample

DEFAULT_IN_FLIGHT = 256  # for a generator that states no concurrency of its own


def in_flight_of(generator) -> int:
    """The requests a generator takes at once: its own ``max_in_flight`` (the openai backend's
    ``max_concurrency``), else :data:`DEFAULT_IN_FLIGHT`."""
    return int(getattr(generator, "max_in_flight", None) or DEFAULT_IN_FLIGHT)


def run_async(optimiser: Optimiser, samples: Sequence[Sample], progress=None, in_flight: int | None = None,
              score_batch: int = 64, score_wait: float = 0.02, start_batch: int | None = None,
              on_done: Callable[[SampleResult], None] | None = None) -> list[SampleResult]:
    """Every sample through its steps independently, at most ``in_flight`` requests out. Step 0
    (embedding a sample, scoring the bank) runs ``start_batch`` samples at a time (default: all),
    when the requests out leave room, so a long list never holds every sample's media at once and
    the engine never waits between batches. ``on_done``: called with each sample's result as soon
    as it finishes (the results folder writes it there). ``progress``: an optional tqdm bar (one
    tick per sample-step). Returns the results in the order of ``samples``."""
    last = optimiser.options.effective_steps
    bound = max(1, in_flight or in_flight_of(optimiser.generator))
    arrived: queue.Queue = queue.Queue()
    unstarted, states = deque(samples), []
    waiting: deque = deque()
    out, error = 0, None

    def done(state) -> None:
        if on_done is not None:
            on_done(optimiser.results([state])[0])

    def admit() -> None:
        batch = [unstarted.popleft() for _ in range(min(start_batch or len(unstarted), len(unstarted)))]
        for state in optimiser.initial(batch):
            states.append(state)
            if last < 1:
                done(state)
            else:
                waiting.append((state, 1))

    with _Sender(optimiser.generator, min(bound, max(len(samples), 1))) as send:
        def launch() -> None:
            nonlocal out
            while out < bound and (waiting or unstarted):
                if not waiting:
                    admit()
                    continue
                state, step = waiting.popleft()
                prompt, seed = optimiser.request(state, step)
                start = time.perf_counter()
                send(prompt, seed).add_done_callback(
                    lambda f, s=state, n=step, p=prompt, t=start: arrived.put(_arrival(f, s, n, p, t)))
                out += 1

        launch()
        while out:
            batch = _gather(arrived, score_batch, score_wait)
            out -= len(batch)
            failures = [b for b in batch if isinstance(b, BaseException)]
            error = error or (failures[0] if failures else None)
            if error is not None:  # stop asking; let the requests out finish
                waiting.clear()
                unstarted.clear()
                continue
            optimiser.finish(batch)
            for a in batch:
                if a.state.stopped_early_at is None and a.step < last:
                    waiting.append((a.state, a.step + 1))
                else:
                    done(a.state)
            launch()
            if progress is not None:
                progress.update(len(batch))
                progress.set_postfix(step=max(a.step for a in batch), best=f"{batch[-1].state.history[-1].best_score:.3f}")
    if error is not None:
        raise error
    return optimiser.results(states)


def _arrival(future: Future, state, step: int, prompt: str, start: float) -> Arrival | BaseException:
    try:
        return Arrival(state, step, prompt, future.result(), time.perf_counter() - start)
    except BaseException as err:  # noqa: BLE001  (handed to the driver, raised there)
        return err


class _Sender:
    """``send(prompt, seed) -> Future`` of the reply: the generator's own ``submit`` where it has one,
    else a pool of ``threads`` calling ``generate`` with one prompt."""

    def __init__(self, generator, threads: int) -> None:
        self.generator, self.threads, self.pool = generator, threads, None

    def __enter__(self) -> Callable[[str, int], Future]:
        if hasattr(self.generator, "submit"):
            return self.generator.submit
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="mils-request")
        return lambda prompt, seed: self.pool.submit(self._one, prompt, seed)

    def _one(self, prompt: str, seed: int):
        replies = self.generator.generate([prompt], [seed])
        if len(replies) != 1:
            raise ComponentError(f"generator returned {len(replies)} replies for 1 prompt")
        return replies[0]

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


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
