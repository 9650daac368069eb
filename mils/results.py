"""Per-sample results on disk: one JSON file per finished sample, written atomically.

A killed run leaves only whole files behind, so re-running the same configuration skips what is
done and recomputes nothing; the final result set is the same as an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

from mils.loop import SampleResult


def _file_name(sample_id: str) -> str:
    return hashlib.sha256(sample_id.encode()).hexdigest()[:20] + ".json"


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False))
    os.replace(tmp, path)


def result_to_dict(result: SampleResult, media: Any = None) -> dict[str, Any]:
    return {
        "sample_id": result.sample_id,
        "media": str(media) if isinstance(media, (str, Path)) else None,
        "caption": result.caption,
        "score": result.score,
        "history": [asdict(h) for h in result.history],
        "kept": [[t, s] for t, s in result.kept],
        "stopped_early_at": result.stopped_early_at,
        "raw_replies": result.raw_replies,
    }


class ResultStore:
    """``<dir>/samples/*.json`` for finished samples, ``<dir>/failed/*.json`` for failures."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        (self.directory / "samples").mkdir(parents=True, exist_ok=True)
        (self.directory / "failed").mkdir(parents=True, exist_ok=True)

    def has(self, sample_id: str) -> bool:
        return (self.directory / "samples" / _file_name(sample_id)).is_file()

    def write(self, result: SampleResult, media: Any = None) -> None:
        _write_atomic(self.directory / "samples" / _file_name(result.sample_id), result_to_dict(result, media))
        (self.directory / "failed" / _file_name(result.sample_id)).unlink(missing_ok=True)

    def write_failure(self, sample_id: str, error: str) -> None:
        _write_atomic(self.directory / "failed" / _file_name(sample_id), {"sample_id": sample_id, "error": error})

    def _read(self, folder: str) -> list[dict[str, Any]]:
        records = []
        for path in sorted((self.directory / folder).glob("*.json")):
            try:
                records.append(json.loads(path.read_text()))
            except json.JSONDecodeError as err:  # only possible if someone edited the file by hand
                raise ValueError(f"corrupt result file {path}: {err}; delete it to recompute that sample") from err
        return records

    def results(self, order: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Finished samples, in ``order`` (sample ids) when given, else by id."""
        records = {r["sample_id"]: r for r in self._read("samples")}
        ids = [i for i in order if i in records] if order is not None else sorted(records)
        return [records[i] for i in ids]

    def failures(self) -> dict[str, str]:
        return {r["sample_id"]: r["error"] for r in self._read("failed")}
