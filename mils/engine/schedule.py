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

from mils.engine.loop import Arrival, Optimiser, SampleResult
from mils.errors import ComponentError
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
    schedule = _Schedule(optimiser, samples, max(1, in_flight or in_flight_of(optimiser.generator)), start_batch,
                         on_done)
    with _Sender(optimiser.generator, min(schedule.bound, max(len(samples), 1))) as send:
        schedule.launch(send)
        while schedule.out:
            batch = _gather(schedule.arrived, score_batch, score_wait)
            if schedule.receive(batch):
                schedule.launch(send)
                if progress is not None:
                    progress.update(len(batch))
                    progress.set_postfix(step=max(a.step for a in batch),
                                         best=f"{batch[-1].state.history[-1].best_score:.3f}")
    if schedule.error is not None:
        raise schedule.error
    return optimiser.results(schedule.states)


class _Schedule:
    """The samples not started, those waiting for a request, the requests out, the first error."""

    def __init__(self, optimiser: Optimiser, samples: Sequence[Sample], bound: int, start_batch: int | None,
                 on_done: Callable[[SampleResult], None] | None) -> None:
        self.optimiser, self.bound, self.start_batch, self.on_done = optimiser, bound, start_batch, on_done
        self.last = optimiser.options.effective_steps
        self.unstarted, self.waiting, self.states = deque(samples), deque(), []
        self.arrived: queue.Queue = queue.Queue()
        self.out, self.error = 0, None

    def done(self, state) -> None:
        if self.on_done is not None:
            self.on_done(self.optimiser.results([state])[0])

    def admit(self) -> None:
        """Step 0 for the next ``start_batch`` samples."""
        batch = [self.unstarted.popleft() for _ in range(min(self.start_batch or len(self.unstarted), len(self.unstarted)))]
        for state in self.optimiser.initial(batch):
            self.states.append(state)
            if self.last < 1:
                self.done(state)
            else:
                self.waiting.append((state, 1))

    def launch(self, send: Callable[[str, int], Future]) -> None:
        """Requests for waiting samples (starting more when none wait) while the bound leaves room."""
        while self.error is None and self.out < self.bound and (self.waiting or self.unstarted):
            if not self.waiting:
                self.admit()
                continue
            state, step = self.waiting.popleft()
            prompt, seed = self.optimiser.request(state, step)
            start = time.perf_counter()
            send(prompt, seed).add_done_callback(
                lambda f, s=state, n=step, p=prompt, t=start: self.arrived.put(_arrival(f, s, n, p, t)))
            self.out += 1

    def receive(self, batch: list) -> bool:
        """Parse and score a micro-batch of replies; False once a request has failed (then the
        requests out are only waited for)."""
        self.out -= len(batch)
        failures = [b for b in batch if isinstance(b, BaseException)]
        self.error = self.error or (failures[0] if failures else None)
        if self.error is not None:
            return False
        self.optimiser.finish(batch)
        for a in batch:
            if a.state.stopped_early_at is None and a.step < self.last:
                self.waiting.append((a.state, a.step + 1))
            else:
                self.done(a.state)
        return True


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
