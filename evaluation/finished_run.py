"""A finished run read back from its results folder, typed: what compare, frontier, rescore, the
official export and the judging export read (the viewer reads leniently on its own, to show a
broken folder's problems instead of stopping at the first).

The folder's layout is :class:`mils.storage.run_folder.RunFolder`'s; ``run.json`` is the record the
benchmark flow wrote (flows/record.py); a folder without it (``mils caption``, a sweep variant, a
VLM baseline) reads the same, with no recorded metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mils.config.run_config import RunConfig, read_run_config
from mils.engine.records import SampleResult
from mils.errors import InputError, MissingInputError
from mils.storage.results import ResultStore, direction
from mils.storage.run_folder import MAX_RESULT_BYTES, RunFolder


@dataclass(frozen=True)
class FinishedRun:
    """Each part is read when first asked for, once: the export reads no config, the frontier no curve."""

    folder: Path

    @classmethod
    def open(cls, folder: str | Path, need_config: bool = False) -> "FinishedRun":
        layout = RunFolder(Path(folder))
        if not layout.samples.is_dir():
            raise MissingInputError(f"{folder} is not a results folder (no samples/)")
        if need_config and not layout.config.is_file():
            raise MissingInputError(f"{folder} is not a results folder of `mils run` (no config.json)")
        return cls(Path(folder))

    @cached_property
    def config(self) -> RunConfig | None:
        """The run's config; None for a folder written without one (older ``mils caption`` output)."""
        return read_run_config(self.folder) if RunFolder(self.folder).config.is_file() else None

    @cached_property
    def record(self) -> dict[str, Any]:
        """``run.json`` as the flow wrote it (NaN where a metric had none); {} when the folder has none."""
        path = RunFolder(self.folder).record
        if not path.is_file():  # a pipe planted under the name is no record either: never opened
            return {}
        if path.stat().st_size > MAX_RESULT_BYTES:
            raise InputError(f"{path} is {path.stat().st_size:,} bytes: no run record is that large")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError, RecursionError) as err:
            raise InputError(f"cannot read run record {path}: {err}") from None
        if not isinstance(record, dict):
            raise InputError(f"{path} is not a run record (a JSON object)")
        return record

    def results(self, summary: bool = False, require: bool = True) -> list[SampleResult]:
        """Every finished sample; ``require``: none at all is an InputError naming the folder."""
        results = ResultStore(self.folder).results(summary=summary)
        if require and not results:
            raise InputError(f"results folder {self.folder} has no finished samples")
        return results

    def higher_is_better(self, results: list[SampleResult]) -> bool:
        return direction(results, str(self.folder))

    @property
    def final_metrics(self) -> dict[str, float]:
        """The recorded corpus metrics of the final captions, x100 as printed (empty without run.json)."""
        final = self.record.get("reports", {}).get("final", {}).get("corpus", {})
        if not isinstance(final, dict) or not all(isinstance(v, dict) and isinstance(v.get("value"), (int, float))
                                                  for v in final.values()):
            raise InputError(f"{RunFolder(self.folder).record}: reports.final.corpus is not {{metric: {{value: number}}}}")
        return {name: 100 * value["value"] for name, value in final.items()}

    @cached_property
    def cached_reports(self) -> list:
        """Every whole entry of the run's metrics cache (``metrics/``; none read through a link), read once."""
        from evaluation.caption_metrics import read_cached_report

        folder = RunFolder(self.folder).metrics
        if not folder.is_dir() or folder.is_symlink():
            return []
        reports = (read_cached_report(path.with_suffix("")) for path in sorted(folder.glob("metrics-*.json")))
        return [r for r in reports if r is not None and "prediction" in r.per_sample]

    @cached_property
    def sample_metrics(self) -> dict[tuple[str, str], dict[str, float]]:
        """(sample id, caption) -> that caption's own metric scores (x100), from the metrics cache: every
        caption the run's tables scored (step 0's and the final). Per-sample statistics are left out."""
        out: dict[tuple[str, str], dict[str, float]] = {}
        for report in self.cached_reports:
            table = report.per_sample
            scores = (100 * table[[c for c in table.columns if c != "prediction" and "_stat/" not in c]]).astype(float)
            for sample_id, prediction, row in zip(table.index, table["prediction"], scores.to_dict("records")):
                out[(str(sample_id), str(prediction))] = row
        return out
