"""Never pay for the same request twice: every generator request, cached on disk.

A request's key hashes the model's identity, the exact prompt (messages), the sampling settings
and the seed; a rerun or a resumed sample finds its replies here and sends nothing. One SQLite
file per cache folder (``<cache_dir>/responses.sqlite``), in WAL mode, so Dask workers and threads
of several runs read and write it at once. ``mils cache info|prune`` looks after it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Sequence

from mils.errors import StorageError
from mils.files import content_hash
from mils.protocols import Closable, Reply, TokenUsage

CACHE_FILE = "responses.sqlite"
_SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, created REAL NOT NULL, reply TEXT NOT NULL,
    prompt_tokens INTEGER, generated_tokens INTEGER, reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cut INTEGER NOT NULL)"""


def request_key(model: str, messages: Any, sampling: dict[str, Any], seed: int) -> str:
    return content_hash(json.dumps([model, messages, sampling, int(seed)], sort_keys=True, ensure_ascii=False), 32)


class ResponseCache:
    """The cache in ``folder``; safe to share between threads and processes."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder).expanduser() / CACHE_FILE
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise StorageError(f"cannot open the response cache {self.path}: {err}") from err

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    def get(self, key: str) -> Reply | None:
        row = self._db().execute("SELECT reply, prompt_tokens, generated_tokens, reasoning_tokens, cut FROM responses "
                                 "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        reply, prompt, generated, reasoning, cut = row
        usage = None if prompt is None else TokenUsage(prompt, generated, cached=True, reasoning=reasoning)
        return Reply(reply, usage, bool(cut))

    def put(self, key: str, model: str, reply: str) -> None:
        usage = getattr(reply, "usage", None)
        self._db().execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (key, model, time.time(), str(reply), usage.prompt if usage else None,
                            usage.generated if usage else None, usage.reasoning if usage else 0,
                            int(bool(getattr(reply, "cut", False)))))

    def info(self) -> list[tuple[str, int, int, float, float]]:
        """Per model: (model, replies, generated tokens, oldest, newest) (times: seconds since the epoch)."""
        return self._db().execute("SELECT model, COUNT(*), COALESCE(SUM(generated_tokens), 0), MIN(created), "
                                  "MAX(created) FROM responses GROUP BY model ORDER BY model").fetchall()

    def prune(self, older_than_days: float | None = None, model: str | None = None) -> int:
        """Delete the replies older than ``older_than_days`` and/or of ``model``; returns how many."""
        clauses, args = [], []
        if older_than_days is not None:
            clauses.append("created < ?")
            args.append(time.time() - older_than_days * 86400)
        if model is not None:
            clauses.append("model = ?")
            args.append(model)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        deleted = self._db().execute(f"DELETE FROM responses{where}", args).rowcount
        self._db().execute("VACUUM")
        return deleted


class CachedGenerator:
    """A generator whose requests go through a :class:`ResponseCache`: only the misses reach
    ``inner`` (in one call, so a batching backend still batches them). ``identity`` names the model
    and everything else that shapes a reply (the backend, its endpoint's model, the chat format)."""

    def __init__(self, inner, cache: ResponseCache, identity: str, sampling: dict[str, Any]) -> None:
        self.inner, self.cache, self.identity, self.sampling = inner, cache, identity, sampling
        self.sent = 0  # requests that reached the model in this process

    # what the schedule and the CLI ask of a generator, answered for the inner one (named, not forwarded
    # wholesale: a wrapper that answers everything hides which parts of a generator the suite uses)
    @property
    def concurrent(self) -> bool:
        return bool(getattr(self.inner, "concurrent", False))

    @property
    def max_in_flight(self) -> int | None:
        return getattr(self.inner, "max_in_flight", None)

    @property
    def submit(self) -> Callable[[str, int], Future]:
        """One request without waiting, through the cache; absent when the inner generator has none."""
        if not hasattr(self.inner, "submit"):
            raise AttributeError(f"{type(self.inner).__name__} takes no single requests (no submit)")
        return self._submit

    def close(self) -> None:
        if isinstance(self.inner, Closable):
            self.inner.close()

    def _submit(self, prompt: str, seed: int) -> Future:
        key = request_key(self.identity, prompt, self.sampling, seed)
        hit = self.cache.get(key)
        if hit is not None:
            done: Future = Future()
            done.set_result(hit)
            return done
        self.sent += 1
        sent = self.inner.submit(prompt, seed)
        # stored before anyone waiting on the future sees the reply (callbacks run in order)
        sent.add_done_callback(lambda f: f.cancelled() or f.exception() or self.cache.put(key, self.identity, f.result()))
        return sent

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[str]:
        keys = [request_key(self.identity, p, self.sampling, s) for p, s in zip(prompts, seeds)]
        replies: list[str | None] = [self.cache.get(k) for k in keys]
        misses = [i for i, r in enumerate(replies) if r is None]
        if misses:
            fresh = self.inner.generate([prompts[i] for i in misses], [seeds[i] for i in misses])
            self.sent += len(misses)
            for i, reply in zip(misses, fresh):
                self.cache.put(keys[i], self.identity, reply)
                replies[i] = reply
        return replies  # type: ignore[return-value]
