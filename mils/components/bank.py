"""Initial caption banks: load, build, generate, and embed once per (scorer, bank).

A bank is a deduplicated tuple of texts plus its provenance (where it came from, which model,
prompt and seed wrote it). Its text embeddings are the one expensive step of MILS that does not
depend on the sample, so they are computed once and cached on disk under a key made of the
scorer's fingerprint and the bank's content hash.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from mils.engine.parsing import normalise, parse_candidates
from mils.engine.seeding import derive_seed
from mils.errors import InputError, MissingInputError
from mils.files import content_hash, write_atomic
from mils.protocols import Generator, Scorer, whole_lines

log = logging.getLogger(__name__)

BANK_PROMPT = """Write {per_class} different short image descriptions of photos that show a {class_name}.
Vary the scene, the viewpoint, the other objects and the setting, as real photo captions do.
Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them very short (up to 10 words).
"""
"""Bank-generation prompt: this suite's, after the paper's method (an LLM writes N captions per ImageNet
class); the paper's own bank came from Gandelsman et al., 40 per class (docs/paper_differences.md row 32)."""

AUDIO_BANK_PROMPT = """Write {per_class} different short descriptions of sound recordings in which you can hear: {class_name}.
Vary the setting, the other sounds around it and how it changes over time, as real audio captions do.
Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them short (under 20 words).
"""
"""Audio bank prompt: this suite's wording of the paper's method (N captions per AudioSet class
label); the paper's Appendix B.1 prints its own (docs/paper_differences.md row 32)."""


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or a CSV with a ``display_name`` column
    (AudioSet's class_labels_indices.csv)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"label file not found: {path}")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if "display_name" not in (reader.fieldnames or []):
                raise InputError(f"{path} needs a display_name column (AudioSet class_labels_indices.csv)")
            names = [row["display_name"].strip() for row in reader]
    else:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise InputError(f"{path} has no class names")
    return names


@dataclass(frozen=True)
class Bank:
    texts: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.texts:
            raise InputError(f"a caption bank needs at least one text (provenance: {self.provenance})")

    def __len__(self) -> int:
        return len(self.texts)

    def content_hash(self) -> str:
        return content_hash("\n".join(self.texts), 16)

    def subsample(self, size: int, seed: int) -> "Bank":
        """A fixed random subset (bank-size ablations); order follows the original bank."""
        if size >= len(self):
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), size, replace=False))
        return Bank(
            tuple(self.texts[i] for i in keep),
            {**self.provenance, "subsample": size, "subsample_seed": seed},
        )


def dedup(texts: Sequence[str], key: Callable[[str], str] = normalise) -> tuple[str, ...]:
    """Drop blanks and duplicates (by :func:`normalise`, or ``key``), keeping the first spelling."""
    seen: set[str] = set()
    out = []
    for text in texts:
        text = text.strip()
        k = key(text)
        if k and k not in seen:
            seen.add(k)
            out.append(text)
    return tuple(out)


def official_subsample(lines: Sequence[str], size: int, seed: int, key: Callable[[str], str],
                       provenance: dict[str, Any]) -> "Bank":
    """The MILS code's initial-bank subset (``init_descriptions_set_size``): ``random.seed(seed);
    random.sample(lines, size)`` over the file's stripped lines, in the order drawn; then blanks and
    duplicates (by ``key``) dropped, which the official code keeps."""
    lines = [line.strip() for line in lines]
    drawn = random.Random(seed).sample(lines, size) if size < len(lines) else lines
    return Bank(dedup(drawn, key), {**provenance, "subsample": size, "subsample_seed": seed,
                                    "subsample_sampler": "official"})


def _provenance_path(path: Path) -> Path:
    return path.with_name(path.name + ".provenance.json")


def read_bank_lines(path: str | Path) -> list[str]:
    """A bank file's lines, as written."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"caption bank not found: {path}")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise InputError(f"caption bank {path} is not UTF-8 text: {err}") from err


def load_bank(path: str | Path, key: Callable[[str], str] = normalise) -> Bank:
    """A bank from a text file, one caption per line (the MILS release format); duplicates by ``key``
    (see :func:`mils.engine.parsing.dedup_key`) dropped."""
    path = Path(path)
    lines = read_bank_lines(path)
    texts = dedup(lines, key)
    if not texts:
        raise InputError(f"caption bank {path} has no non-empty lines")
    provenance = {"source": str(path), "lines": len(lines)}
    sidecar = _provenance_path(path)
    if sidecar.is_file():
        provenance = {**json.loads(sidecar.read_text()), **provenance}
    return Bank(texts, provenance)


def save_bank(bank: Bank, path: str | Path) -> Path:
    """Write the texts and a ``.provenance.json`` sidecar next to them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the texts last, whole: a bank file that exists is complete (a generated bank is reused by its name)
    write_atomic(_provenance_path(path), json.dumps(bank.provenance, indent=2) + "\n")
    return write_atomic(path, "\n".join(bank.texts) + "\n")


def template_bank(class_names: Sequence[str], templates: Sequence[str]) -> Bank:
    """CLIP-style bank: every template (with a ``{}`` slot) filled with every class name."""
    texts = dedup([t.format(c) for c in class_names for t in templates])
    return Bank(texts, {"source": "templates", "templates": list(templates), "classes": len(class_names)})


def generate_bank(
    generator: Generator,
    class_names: Sequence[str],
    per_class: int,
    seed: int,
    batch_size: int = 8,
    generator_name: str = "",
    prompt: str = BANK_PROMPT,
) -> Bank:
    """After the paper's method (its prompts differ: docs/paper_differences.md row 32): ask the LLM for ``per_class`` captions per class, dedup, keep provenance."""
    texts: list[str] = []
    empty: list[str] = []
    for start in tqdm(range(0, len(class_names), batch_size), desc="bank", unit="batch"):
        names = class_names[start : start + batch_size]
        prompts = [prompt.format(per_class=per_class, class_name=n) for n in names]
        replies = generator.generate(prompts, [derive_seed(seed, "bank", n) for n in names])
        for name, reply in zip(names, replies):
            found = parse_candidates(whole_lines(reply))[:per_class]
            texts.extend(found)
            if not found:
                empty.append(name)
    if empty:
        log.warning("bank generation: no usable caption for %d classes: %s", len(empty), empty[:10])
    provenance = {
        "source": "generated",
        "generator": generator_name,
        "prompt": prompt,
        "seed": seed,
        "per_class": per_class,
        "classes": len(class_names),
        "classes_without_captions": empty,
    }
    return Bank(dedup(texts), provenance)


def bank_cache_file(scorer: Scorer, bank: Bank, cache_dir: str | Path | None) -> Path | None:
    """Where the bank's embeddings under ``scorer`` are cached (keyed by the scorer's weights and the bank's text)."""
    if cache_dir is None:
        return None
    return Path(cache_dir) / f"bank-{content_hash(f'{scorer.fingerprint()}|{bank.content_hash()}', 24)}.npy"


def bank_embeddings(
    scorer: Scorer, bank: Bank, cache_file: Path | None, chunk: int = 256, mapped: bool = False
) -> np.ndarray:
    """Text embeddings of the whole bank, from ``cache_file`` (:func:`bank_cache_file`) when present (``mapped``:
    read from the disk as rows are used, for a memory whose vector index reads only each sample's shortlist)."""
    if cache_file is not None:
        if cache_file.is_file():
            emb = np.load(cache_file, mmap_mode="r" if mapped else None)
            if emb.shape[0] == len(bank):
                return emb
            log.warning("ignoring stale bank cache %s (%d rows, bank has %d)", cache_file, emb.shape[0], len(bank))
    parts = []
    for start in tqdm(range(0, len(bank), chunk), desc="encode bank", unit="chunk", leave=False):
        parts.append(np.asarray(scorer.embed_texts(bank.texts[start : start + chunk]), np.float32))
    emb = np.concatenate(parts)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, emb)
        os.replace(tmp, cache_file)  # atomic: a killed run never leaves a half-written cache
        _remove_orphan_tmp(cache_file)
    return emb


def _remove_orphan_tmp(cache_file: Path) -> None:
    """Delete half-written caches of killed processes (a 30K bank's can be 100+ MB); a live
    process's file is left alone."""
    for tmp in cache_file.parent.glob(f"{cache_file.stem}.*.tmp.npy"):
        pid = tmp.name.split(".")[-3]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError):
            pass
