"""A caption memory: the captions of a corpus (CC3M, SS1M, COCO's training captions, the MILS release banks),
gathered into one bank file that a run retrieves from (``bank: {path: MEMORY}``: embedded once and cached like
any bank; step 0 keeps each sample's top-K by the scorer's similarity). The memory strategy prompts with its
retrieved captions' concepts (mils/engine/strategies/memory_concepts.py); MILS can start from it too.

A corpus file is read by its form: ``.txt`` one caption per line; ``.tsv`` CC3M's ``caption<TAB>url`` rows
(the first column); ``.csv`` a ``caption`` column; ``.json`` COCO's ``{"annotations": [{"caption": ...}]}`` or
a list of captions (SS1M's released list)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

from mils.components.bank import Bank, dedup
from mils.errors import InputError, MissingInputError


def read_corpus(path: str | Path) -> list[str]:
    """The captions of one corpus file (see the module's docstring for the forms read)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingInputError(f"caption corpus not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"caption corpus {path} is not UTF-8 text: {err}") from err
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return [row.split("\t", 1)[0] for row in text.splitlines()]
    if suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and "caption" not in rows[0]:
            raise InputError(f"caption corpus {path}: a .csv needs a 'caption' column (it has {', '.join(rows[0])})")
        return [row["caption"] or "" for row in rows]
    if suffix == ".json":
        return _json_captions(path, text)
    return text.splitlines()


def _json_captions(path: Path, text: str) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"caption corpus {path} is not valid JSON: {err}") from err
    items = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(f"caption corpus {path}: JSON holds a list of captions or COCO's {{'annotations': [...]}}")
    captions = [item.get("caption") if isinstance(item, dict) else item for item in items]
    if not all(isinstance(c, str) for c in captions):
        raise InputError(f"caption corpus {path}: every entry is a caption text (or {{'caption': text}})")
    return captions


def build_memory(corpora: Sequence[str | Path], size: int | None = None, seed: int = 0) -> Bank:
    """Every corpus's captions, blanks and duplicates dropped (first spelling kept), in the order read; ``size``:
    a fixed random subset of them (``seed``), for a smaller memory."""
    captions: list[str] = []
    counts = {}
    for corpus in corpora:
        found = read_corpus(corpus)
        counts[str(corpus)] = len(found)
        captions += found
    texts = dedup(captions)
    if not texts:
        raise InputError(f"no captions in {', '.join(map(str, corpora))}")
    memory = Bank(texts, {"source": "memory", "corpora": counts, "captions": len(texts)})
    return memory.subsample(size, seed) if size else memory
