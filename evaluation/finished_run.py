"""A finished run read back from its results folder, typed: what compare, frontier, rescore, the
official export and the judging export read (the viewer reads leniently on its own, to show a
broken folder's problems instead of stopping at the first).

The folder's layout is :class:`mils.storage.run_folder.RunFolder`'s; ``run.json`` is the run's record
(:mod:`evaluation.run_record`, read by its one reader); a folder without it (written by an older
version) reads the same, with no recorded metrics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from evaluation.run_record import RunRecord, read_record
from mils.config import RunConfig, read_run_config
from mils.engine import SampleResult
from mils.errors import InputError, MissingInputError
from mils.storage import ResultStore, RunFolder, direction


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
    def record(self) -> RunRecord | None:
        """``run.json``, typed (:func:`evaluation.run_record.read_record`); None when the folder has none."""
        return read_record(self.folder)

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
        final = self.record.reports.get("final") if self.record else None
        return {name: 100 * estimate.value for name, estimate in final.corpus.items()} if final else {}

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
