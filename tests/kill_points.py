"""Aimed SIGKILLs for fault tests: a config's ``plugins`` names this module, and the environment
variable ``MILS_KILL_AT`` names where the process kills itself (it does nothing when unset):

- ``bank-write``: half-way through writing the bank-embedding cache (half a file on disk, not renamed);
- ``metrics``: while a metric report is saved (per-sample table half-written, summary not yet);
- ``mlflow``: on the run's second MLflow metrics call (parent and child started, params logged);
- ``generated-bank``: half-way through writing a generated bank's texts (half under the temporary name);
- ``second-sample``: just after the second sample's result is written (a kill mid-run).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

POINT = os.environ.get("MILS_KILL_AT")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _half(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


if POINT == "bank-write":
    import numpy as np

    real_save = np.save

    def half_save(file, arr, *args, **kwargs):
        real_save(file, arr, *args, **kwargs)
        if Path(str(file)).name.startswith("bank-"):
            _half(Path(str(file)))
            _die()

    np.save = half_save

elif POINT == "metrics":
    from evaluation.caption_metrics import MetricReport

    def half_save_report(self, stem):
        self.per_sample.to_parquet(stem.with_suffix(".parquet"))
        _half(stem.with_suffix(".parquet"))
        _die()

    MetricReport.save = half_save_report

elif POINT == "mlflow":
    import mlflow

    real_log_metrics, calls = mlflow.log_metrics, []

    def dying_log_metrics(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            _die()
        return real_log_metrics(*args, **kwargs)

    mlflow.log_metrics = dying_log_metrics

elif POINT == "second-sample":
    from mils.storage.results import ResultStore

    real_write, written = ResultStore.write, []

    def dying_write(self, result):
        real_write(self, result)
        written.append(result.sample_id)
        if len(written) == 2:
            _die()

    ResultStore.write = dying_write

elif POINT == "generated-bank":
    import mils.components.bank

    real_write_atomic = mils.components.bank.write_atomic

    def half_write_atomic(path, text):
        if str(path).endswith(".provenance.json"):
            return real_write_atomic(path, text)
        with open(Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp"), "w") as f:
            f.write(text[: len(text) // 2])
        _die()

    mils.components.bank.write_atomic = half_write_atomic
