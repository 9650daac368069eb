"""The pipeline's judging stage: a pairwise batch of MILS's final outputs against a baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from human_eval.export import export_batch, load_system
from human_eval.protocol import BatchSettings
from mils.files import content_hash


@task(name="judging-batch")
def judging_task(results_dir: str, settings: BatchSettings, run_id: str | None = None) -> dict[str, Any]:
    """Export the batch into ``results_dir/judging-<key>/``, where the key hashes the settings and
    both sides' outputs: the same inputs reuse the folder. Returns its path, or why it was skipped."""
    if settings.against == "step0":
        baseline = load_system(results_dir, "step0")
    else:
        baseline = load_system(settings.against, "final")
    mils = load_system(results_dir, "final")
    payload = json.dumps([settings.model_dump(), sorted((k, repr(v)) for k, v in baseline.items()),
                          sorted((k, repr(v)) for k, v in mils.items())])
    folder = Path(results_dir) / f"judging-{content_hash(payload, 12)}"
    if (folder / "key.json").is_file():
        return {"path": str(folder), "cached": True}
    shared = set(baseline) & set(mils)
    if shared and all((baseline[i].text, baseline[i].image) == (mils[i].text, mils[i].image) for i in shared):
        reason = f"all {len(shared)} outputs equal the baseline's ({settings.against}): nothing to judge"
        get_run_logger().warning("judging batch skipped: %s", reason)
        return {"path": None, "skipped": reason}
    manifest = export_batch(baseline, mils, folder, axes=settings.axes, names=settings.names, seed=settings.seed,
                            assignments=settings.assignments, catch_fraction=settings.catch, run_id=run_id)
    return {"path": str(folder), "cached": False, "pairs": len(manifest["pairs"])}
