"""Models are loaded once per worker process and reused by every task that runs there.

A worker (a thread-runner process, or one Dask worker process owning one GPU) keeps one
Captioner per model configuration; tasks only look it up. The lock also serialises model use
inside a process: one accelerator, one batch at a time.
"""

from __future__ import annotations

import hashlib
import json
import threading

from mils.captioning import Captioner
from mils.config import RunConfig

_CAPTIONERS: dict[str, Captioner] = {}
_LOCK = threading.RLock()


def model_key(config: RunConfig) -> str:
    """What the loaded models depend on (not steps, top-K or the dataset)."""
    parts = config.model_dump(include={"plugins", "generator", "scorer", "bank", "task", "cache_dir"})
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def captioner_for(config: RunConfig) -> Captioner:
    """The process's Captioner for these models, with ``config``'s loop options applied."""
    key = model_key(config)
    with _LOCK:
        if key not in _CAPTIONERS:
            _CAPTIONERS[key] = Captioner(config)
        captioner = _CAPTIONERS[key]
        captioner.set_loop(config)
        return captioner


def model_lock() -> threading.RLock:
    return _LOCK


def loaded_count() -> int:
    return len(_CAPTIONERS)
