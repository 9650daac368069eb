"""Our results in the official MILS code's output layout, and that layout read back.

The official scripts write ``OUTPUT_DIR/<sample id>/log.txt``: one line per step, ``best \\t mean \\t text``
(`main_image_captioning.py:113, 129`; the video, audio and text-to-image scripts alike). Its columns:

- ``best``: the best score of the step's pool (style transfer: its ``(style, content)`` distance pair
  as Python prints a tuple), ``text``: its text (the official evaluation scripts
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

import numpy as np

from mils.engine import SampleResult
from mils.errors import InputError, MissingInputError
from mils.files import own_folder, write_atomic

_UNSAFE_ID = re.compile(r"[\\/\x00-\x1f]|^\.\.?$|^$")


def official_lines(result: SampleResult, steps: int) -> list[str]:
    """``best \\t mean \\t text`` for steps 0..``steps``, with the official meaning of each column."""
    sign = -1.0 if result.higher_is_better else 1.0  # the official ranking key
    lines = []
    for step in range(steps + 1):
        record = result.at_step(step)
        if step == 0 and result.higher_is_better:  # captioning: np.mean(init_scores), the whole bank
            mean = record.scored_mean if record.scored_mean is not None else math.nan
        else:  # the ranking key's top-K mean (scorer.py:117); a minimised (style) run logs it at step 0 too
            mean = sign * record.mean_topk
        text = re.sub(r"[\t\r\n]", " ", record.best)  # as written, but a tab or newline would break the columns
        lines.append(f"{_best_column(result, step, record.best_score)}\t{mean}\t{text}\n")
    return lines


def _best_column(result: SampleResult, step: int, best_score: float) -> str:
    """Column 1: the best score; a run ranked by a sum of objectives (style transfer's (style,
    content) distances) prints the best's pair as the official log does, a Python tuple of float32s
    under numpy < 2 (``main_style_transfer.py:123``, ``f'{best_value[0]}'``), taken from the step's trace."""
    if result.trace:
        value = result.trace[min(step, len(result.trace) - 1)].kept[0][1]
        if isinstance(value, tuple):
            return "(" + ", ".join(str(np.float32(v)) for v in value) + ")"
    return f"{best_score}"


def official_folders(dataset, results: list[SampleResult]) -> dict[str, str]:
    """The folder each sample's log goes to, as the official scripts name and read it: the row of
    the annotation CSV for Clotho and DrawBench (``main_audio_captioning.py:40``,
    ``eval_utils/audio_captioning.py`` reads ``OUT/<row>/log.txt`` for every row;
    ``main_image_generation_enhancement.py:43``), the sample id elsewhere (the COCO image id that
    ``eval_utils/image_captioning.py`` reads back with ``int()``, the MSR-VTT video id).
    ``dataset``: the run's dataset (its rows carry ``row``), or None for ids as they are."""
    if dataset is None or not any("row" in s.meta for s in dataset.rows):
        return {r.sample_id: r.sample_id for r in results}
    rows = {s.id: s.meta.get("row") for s in dataset.rows}
    missing = [r.sample_id for r in results if rows.get(r.sample_id) is None]
    if missing:
        raise InputError(f"{len(missing)} samples of the run are not in its dataset's annotation file (e.g. "
                         f"{missing[0]!r}): the official folder names are that file's rows")
    return {r.sample_id: str(rows[r.sample_id]) for r in results}


def export_official(results: list[SampleResult], out: Path, folders: dict[str, str] | None = None) -> int:
    """Write each result as ``out/<folder>/log.txt`` (``folders``: sample id -> folder name, from
    :func:`official_folders`; default the sample id); returns how many were written. Step 0's
    mean is ``nan`` for results written before the suite recorded the bank's mean."""
    if not results:
        raise InputError("nothing to export: the run has no finished samples")
    folders = folders or {r.sample_id: r.sample_id for r in results}
    for result in results:
        name = folders[result.sample_id]
        if _UNSAFE_ID.search(name) or len(name.encode()) > 200:
            raise InputError(f"sample id {name!r} cannot be a folder name in the official layout")
    steps = max(len(r.history) for r in results) - 1
    own_folder(out, then="nothing was exported: name a real folder")
    for result in results:
        folder = out / folders[result.sample_id]
        own_folder(folder, base=out)
        write_atomic(folder / "log.txt", "".join(official_lines(result, steps)))
    return len(results)


def _number(column: str) -> float:
    if column.startswith("(") and column.endswith(")"):
        return float(sum(float(part) for part in column[1:-1].split(",")))
    return float(column)


def read_official_logs(folder: Path) -> dict[str, list[tuple[float, float, str]]]:
    """``{sample id: [(best, mean, text) per step]}`` of an official output folder (or an export),
    so the two codes' runs can be compared line by line; a ``(style, content)`` best is read as its
    sum, the official ranking key (``key=lambda x: x[0] + x[1]``)."""
    if not folder.is_dir():
        raise MissingInputError(f"no such folder: {folder}")
    logs = {}
    for log in sorted(folder.glob("*/log.txt")):
        rows = []
        for n, line in enumerate(log.read_text(encoding="utf-8").splitlines(), 1):
            best, mean, text = (line.split("\t", 2) + ["", ""])[:3]
            try:
                rows.append((_number(best), float(mean), text.strip()))
            except ValueError:
                raise InputError(f"{log}:{n} is not 'best<TAB>mean<TAB>text': {line[:80]!r}") from None
        logs[log.parent.name] = rows
    if not logs:
        raise InputError(f"{folder} holds no <sample id>/log.txt files")
    return logs
