"""Per-sample results on disk: one JSON file per finished sample, written atomically.

A killed run leaves only whole files behind, so re-running the same configuration skips what is
done and recomputes nothing; the final result set is the same as an uninterrupted run's. Files
carry a schema version; :func:`result_from_dict` rebuilds the typed :class:`SampleResult` and
names the file when it is from another version or not a result at all.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from mils.errors import InputError, StorageError
from mils.loop import SampleResult, StepCost, StepRecord, StepTrace, Value

SCHEMA_VERSION = 3  # 2: per-step cost records; 3: per-step trace (older files read without them)


def _file_name(sample_id: str) -> str:
    return hashlib.sha256(sample_id.encode()).hexdigest()[:20] + ".json"


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(payload, ensure_ascii=False))
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"could not write {path.name} in {path.parent} ({err.strerror or err}); the results "
                           "written before are intact: free some space (or fix the folder) and rerun to go on") from err


def result_to_dict(result: SampleResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "sample_id": result.sample_id,
        "media": result.media,
        "caption": result.caption,  # for readers of the raw files; rebuilt from the history
        "score": result.score,
        "history": [asdict(h) for h in result.history],
        "kept": [[t, _value(v)] for t, v in result.kept],
        "stopped_early_at": result.stopped_early_at,
        "raw_replies": result.raw_replies,
        "cost": [asdict(c) for c in result.cost],
        "trace": _pack_trace(result.trace),
    }


def _value(v: Value) -> float | list[float]:
    return list(v) if isinstance(v, tuple) else v


def _pack_trace(trace: list[StepTrace]) -> dict[str, Any]:
    """Steps repeat most of their kept texts: each text is stored once, steps refer to it by index."""
    texts: dict[str, int] = {}

    def pack(pairs):
        return [[texts.setdefault(t, len(texts)), _value(v)] for t, v in pairs]

    steps = [{"kept": pack(s.kept), "new": pack(s.new)} for s in trace]
    return {"texts": list(texts), "steps": steps}


def _unpack_trace(raw: dict[str, Any] | None) -> list[StepTrace]:
    if not raw:
        return []
    texts = raw["texts"]

    def unpack(pairs):
        return [(texts[i], tuple(v) if isinstance(v, list) else v) for i, v in pairs]

    return [StepTrace(unpack(s["kept"]), unpack(s["new"])) for s in raw["steps"]]


def result_from_dict(raw: Any, source: str | Path = "<memory>") -> SampleResult:
    """The typed result of a result file's content (``source`` names it in errors)."""
    if not isinstance(raw, dict) or "sample_id" not in raw or "history" not in raw:
        raise InputError(f"{source} is not a MILS sample result (no sample_id/history)")
    version = raw.get("schema", 0)
    if version not in (0, 1, 2, SCHEMA_VERSION):  # 0: files written before the version field, same layout
        raise InputError(f"{source} has result schema {version}; this version of the suite reads "
                         f"{SCHEMA_VERSION}: rerun the config, or open it with the suite that wrote it")
    try:
        history = [StepRecord(**h) for h in raw["history"]]
        kept = [(t, tuple(s) if isinstance(s, list) else s) for t, s in raw.get("kept", [])]
        cost = [StepCost(**c) for c in raw.get("cost", [])]
        trace = _unpack_trace(raw.get("trace"))
    except (TypeError, KeyError, IndexError) as err:
        raise InputError(f"{source}: malformed step history: {err}") from err
    if not history:
        raise InputError(f"{source}: empty step history")
    return SampleResult(raw["sample_id"], history, kept, raw.get("stopped_early_at"), raw.get("raw_replies", []),
                        raw.get("media"), cost, trace)


def _summary(raw: Any) -> Any:
    if isinstance(raw, dict):
        for heavy in ("trace", "raw_replies", "kept"):
            raw.pop(heavy, None)
    return raw


class ResultStore:
    """``<dir>/samples/*.json`` for finished samples, ``<dir>/failed/*.json`` for failures."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        (self.directory / "samples").mkdir(parents=True, exist_ok=True)
        (self.directory / "failed").mkdir(parents=True, exist_ok=True)

    def has(self, sample_id: str) -> bool:
        return (self.directory / "samples" / _file_name(sample_id)).is_file()

    def write(self, result: SampleResult) -> None:
        _write_atomic(self.directory / "samples" / _file_name(result.sample_id), result_to_dict(result))
        (self.directory / "failed" / _file_name(result.sample_id)).unlink(missing_ok=True)

    def write_failure(self, sample_id: str, error: str) -> None:
        _write_atomic(self.directory / "failed" / _file_name(sample_id), {"sample_id": sample_id, "error": error})

    def _read(self, folder: str) -> Iterator[tuple[Path, Any]]:
        for path in sorted((self.directory / folder).glob("*.json")):
            try:
                yield path, orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as err:  # only possible if someone edited the file by hand
                raise InputError(f"corrupt result file {path}: {err}; delete it to recompute that sample") from err

    def files(self, summary: bool = False) -> list[tuple[Path, SampleResult]]:
        """Every finished sample with the file it is stored in; ``summary``: without the per-step
        trace, raw replies and final kept set (what metrics, curves, cost and MLflow need, in a
        fraction of the memory: a 50,000-sample run's results fit in a few hundred MB)."""
        return [(path, result_from_dict(_summary(raw) if summary else raw, path)) for path, raw in self._read("samples")]

    def results(self, order: Iterable[str] | None = None, summary: bool = False) -> list[SampleResult]:
        """Finished samples, in ``order`` (sample ids) when given, else by id (``summary``: see :meth:`files`)."""
        records = {r.sample_id: r for _, r in self.files(summary)}
        ids = [i for i in order if i in records] if order is not None else sorted(records)
        return [records[i] for i in ids]

    def failures(self) -> dict[str, str]:
        return {raw["sample_id"]: raw["error"] for _, raw in self._read("failed")}
