"""A run's progress in sample-steps, shared between the flow's progress bar and the shard tasks
running in the same process: a bar that moved only when a whole shard finished sat at 0/8 for
minutes, then jumped to 8/8. Tasks in other processes (Dask workers) find no bar here; the flow
then advances its bar when their shards finish. And where a run's wall-clock seconds go (:class:`PhaseTimer`)."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator, Sequence

_BARS: dict[str, object] = {}
_LOCK = threading.Lock()

log = logging.getLogger(__name__)


@contextmanager
def shared_bar(key: str, bar) -> Iterator[None]:
    """Make ``bar`` (a tqdm) the one :func:`advance` moves for ``key`` (the results folder)."""
    with _LOCK:
        _BARS[key] = bar
    try:
        yield
    finally:
        with _LOCK:
            _BARS.pop(key, None)


def advance(key: str, n: int) -> None:
    with _LOCK:
        bar = _BARS.get(key)
        if bar is not None:
            bar.update(n)


class PhaseTimer:
    """Wall-clock seconds per named phase (for the benchmark's breakdown)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()  # samples may advance in threads (mils/engine/schedule.py)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[phase] += time.perf_counter() - start


def log_empty_replies(steps_of: Sequence[int], empty: Sequence[bool], steps: int) -> None:
    """One line per step (not one per reply): how many replies had no usable line (their samples keep
    the previous top-K; each sample's record marks the step). ``steps_of``: each reply's step."""
    by_step: dict[int, list[bool]] = {}
    for step, e in zip(steps_of, empty):
        by_step.setdefault(step, []).append(e)
    for step, flags in sorted(by_step.items()):
        if any(flags):
            log.warning("step %d/%d: %d of %d replies had no usable line (those samples keep their top-K)", step, steps,
                        sum(flags), len(flags))
