"""Our results in the official MILS code's output layout, and that layout read back.

The official scripts write ``OUTPUT_DIR/<sample id>/log.txt``: one line per step, ``best \\t mean \\t text``
(`main_image_captioning.py:113, 129`; the video, audio and text-to-image scripts alike). Its columns:

- ``best``: the best score of the step's pool, ``text``: its text (the official evaluation scripts
  read the caption as the last tab-separated field of line ``index_to_choose``, -1 by default);
- ``mean`` at step 0: the mean score over the WHOLE initial bank (``np.mean(init_scores)``; for
  text-to-image the user's prompt is the only candidate, so it is its score);
- ``mean`` at later steps: the top-K mean of the ranking key, ``key = -score`` for a maximised
  score, so a negated top-K mean (`scorer.py:117`; `eval_utils/find_average_scores.py` negates it back).

A sample that stopped early repeats its last step, so every folder has ``steps + 1`` lines, as the
official runs (which never stop early) and `eval_utils/cleanup.py` expect.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from mils.errors import InputError, MissingInputError
from mils.files import write_atomic
from mils.records import SampleResult

_UNSAFE_ID = re.compile(r"[\\/\x00-\x1f]|^\.\.?$|^$")


def official_lines(result: SampleResult, steps: int) -> list[str]:
    """``best \\t mean \\t text`` for steps 0..``steps``, with the official meaning of each column."""
    sign = -1.0 if result.higher_is_better else 1.0  # the official ranking key
    lines = []
    for step in range(steps + 1):
        record = result.at_step(step)
        if step == 0:
            mean = record.scored_mean if record.scored_mean is not None else math.nan
        else:
            mean = sign * record.mean_topk
        text = " ".join(record.best.split())  # a tab or newline in a caption would break the columns
        lines.append(f"{record.best_score}\t{mean}\t{text}\n")
    return lines


def export_official(results: list[SampleResult], out: Path) -> int:
    """Write each result as ``out/<sample id>/log.txt``; returns how many were written. Step 0's
    mean is ``nan`` for results written before the suite recorded the bank's mean."""
    if not results:
        raise InputError("nothing to export: the run has no finished samples")
    for result in results:
        if _UNSAFE_ID.search(result.sample_id) or len(result.sample_id.encode()) > 200:
            raise InputError(f"sample id {result.sample_id!r} cannot be a folder name in the official layout")
    steps = max(len(r.history) for r in results) - 1
    for result in results:
        folder = out / result.sample_id
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "log.txt", "".join(official_lines(result, steps)))
    return len(results)


def read_official_logs(folder: Path) -> dict[str, list[tuple[float, float, str]]]:
    """``{sample id: [(best, mean, text) per step]}`` of an official output folder (or an export),
    so the two codes' runs can be compared line by line."""
    if not folder.is_dir():
        raise MissingInputError(f"no such folder: {folder}")
    logs = {}
    for log in sorted(folder.glob("*/log.txt")):
        rows = []
        for n, line in enumerate(log.read_text(encoding="utf-8").splitlines(), 1):
            best, mean, text = (line.split("\t", 2) + ["", ""])[:3]
            try:
                rows.append((float(best), float(mean), text.strip()))
            except ValueError:
                raise InputError(f"{log}:{n} is not 'best<TAB>mean<TAB>text': {line[:80]!r}") from None
        logs[log.parent.name] = rows
    if not logs:
        raise InputError(f"{folder} holds no <sample id>/log.txt files")
    return logs
