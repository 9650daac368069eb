"""POPE (Li et al., 2023): yes/no object-existence probing of a vision-language model.

For each image, questions "Is there a <object> in the image?" about objects that are in it
(answer yes) and objects that are not (answer no), the absent ones chosen three ways:

- random: uniformly among the categories absent from the image;
- popular: the categories most frequent over the dataset, absent from the image;
- adversarial: the categories that co-occur most often with the image's objects, absent from it.

Ground truth comes from COCO instances annotations; POPE's released question files (JSON lines
with ``image``, ``text``, ``label``) load as well. Answers are free text, parsed to yes/no as the
POPE evaluation does (a negation word in the answer's first sentence means no), with "unclear"
kept apart instead of silently counted as yes. Metrics: accuracy, precision, recall and F1 of
"yes", and the yes-ratio, with bootstrap 95% intervals over images.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from mils.errors import InputError, MissingInputError

SETTINGS = ("random", "popular", "adversarial")
QUESTION = "Is there a {} in the image?"


@dataclass(frozen=True)
class Question:
    image: str  # the image's file name
    object: str
    label: str  # "yes" or "no"
    setting: str

    @property
    def text(self) -> str:
        return QUESTION.format(self.object)


def load_instances(path: str | Path, by: str = "file_name", with_empty: bool = False) -> dict[str, set[str]]:
    """COCO instances JSON -> image (its ``file_name``, or its ``id`` as a string) -> the category
    names annotated in it. Images with no annotation are left out (nothing can be asked about them
    in POPE) unless ``with_empty`` (for CHAIR, every object a caption names there is hallucinated)."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"COCO instances file {path} not found (e.g. instances_val2014.json)")
    try:
        raw = json.loads(path.read_text())
        names = {c["id"]: c["name"] for c in raw["categories"]}
        keys = {im["id"]: str(im[by]) for im in raw["images"]}
        objects: dict[str, set[str]] = {key: set() for key in keys.values()} if with_empty else {}
        for ann in raw["annotations"]:
            objects.setdefault(keys[ann["image_id"]], set()).add(names[ann["category_id"]])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{path} is not a COCO instances file: {err!r}") from err
    return objects


def cooccurrence(objects: Mapping[str, set[str]]) -> dict[str, Counter]:
    """For each category, how many images it shares with every other category."""
    table: dict[str, Counter] = {}
    for present in objects.values():
        for a in present:
            table.setdefault(a, Counter()).update(b for b in present if b != a)
    return table


def negatives(present: set[str], setting: str, k: int, categories: Sequence[str], frequency: Counter,
              cooccur: Mapping[str, Counter], rng: random.Random) -> list[str]:
    """``k`` absent categories for one image (fewer if fewer are absent); never a present one.
    Ties are broken by name, so the choice does not depend on dictionary order."""
    absent = [c for c in categories if c not in present]
    if setting == "random":
        return rng.sample(sorted(absent), min(k, len(absent)))
    if setting == "popular":
        return sorted(absent, key=lambda c: (-frequency[c], c))[:k]
    if setting == "adversarial":
        together = Counter()
        for obj in present:
            together.update(cooccur.get(obj, {}))
        return sorted(absent, key=lambda c: (-together[c], -frequency[c], c))[:k]
    raise InputError(f"POPE setting is one of {SETTINGS}, not {setting!r}")


def build_questions(objects: Mapping[str, set[str]], setting: str, images: int = 500, per_image: int = 3,
                    seed: int = 0) -> list[Question]:
    """POPE's recipe: ``images`` images with at least ``per_image`` annotated objects (a seeded
    sample), ``per_image`` of their objects asked about (yes) and ``per_image`` absent ones (no)."""
    if setting not in SETTINGS:
        raise InputError(f"POPE setting is one of {SETTINGS}, not {setting!r}")
    rng = random.Random(seed)
    frequency = Counter(c for present in objects.values() for c in present)
    categories = sorted(frequency)
    cooccur = cooccurrence(objects)
    eligible = sorted(name for name, present in objects.items() if len(present) >= per_image)
    chosen = rng.sample(eligible, min(images, len(eligible)))
    questions = []
    for image in chosen:
        present = objects[image]
        for obj in rng.sample(sorted(present), per_image):
            questions.append(Question(image, obj, "yes", setting))
        for obj in negatives(present, setting, per_image, categories, frequency, cooccur, rng):
            questions.append(Question(image, obj, "no", setting))
    return questions


def load_pope_file(path: str | Path, setting: str | None = None) -> list[Question]:
    """POPE's released question files: JSON lines ``{"image", "text", "label"}``."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"POPE question file {path} not found")
    setting = setting or next((s for s in SETTINGS if s in path.name), "file")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            found = re.match(r"Is there an? (.+?) in the im(?:age|g)\?", row["text"].strip(), re.I)
            label = row["label"].strip().lower()
        except (json.JSONDecodeError, KeyError, AttributeError) as err:
            raise InputError(f"{path} line {n}: not a POPE question ({err!r})") from err
        if label not in ("yes", "no") or not found:
            raise InputError(f"{path} line {n}: expected 'Is there a ... in the image?' labelled yes/no")
        out.append(Question(row["image"], found.group(1), label, setting))
    return out


_NEGATION = re.compile(r"\b(?:no|not|none|nothing|neither|nor|never|cannot)\b|n't\b", re.I)
_YES = re.compile(r"\b(?:yes|yeah|yep|there (?:is|are)|i (?:can )?see|visible|present|contains?)\b", re.I)


def parse_yes_no(answer: str) -> str | None:
    """"yes", "no" or None (an empty or unclear answer). The first sentence decides, as in the
    POPE evaluation: a leading yes/no word wins; otherwise any negation means no."""
    text = (answer or "").strip()
    if not text:
        return None
    first = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0]
    lead = re.match(r"\W*(yes|no)\b", first, re.I)
    if lead:
        return lead.group(1).lower()
    if _NEGATION.search(first):
        return "no"
    return "yes" if _YES.search(first) else None


def _scores(labels: np.ndarray, answers: np.ndarray) -> dict[str, float]:
    """labels/answers: 1 yes, 0 no, -1 unclear (always wrong, never a yes)."""
    said_yes = answers == 1
    tp = float(np.sum(said_yes & (labels == 1)))
    precision = tp / said_yes.sum() if said_yes.sum() else 0.0
    recall = tp / (labels == 1).sum() if (labels == 1).sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float(np.mean(labels == answers)), "precision": precision, "recall": recall, "f1": f1,
            "yes_ratio": float(np.mean(said_yes))}


def pope_metrics(questions: Sequence[Question], answers: Iterable[str], resamples: int = 1000,
                 seed: int = 0) -> dict[str, dict[str, float]]:
    """Accuracy, precision, recall, F1 and yes-ratio with 95% intervals from a bootstrap over
    images (an image's questions are resampled together), plus the count of unclear answers."""
    answers = list(answers)
    if len(answers) != len(questions):
        raise InputError(f"{len(answers)} answers for {len(questions)} questions")
    code = {"yes": 1, "no": 0, None: -1}
    labels = np.array([code[q.label] for q in questions])
    parsed = np.array([code[parse_yes_no(a)] for a in answers])
    point = _scores(labels, parsed)
    images = sorted({q.image for q in questions})
    rows = {im: [] for im in images}
    for n, q in enumerate(questions):
        rows[q.image].append(n)
    groups = [np.array(rows[im]) for im in images]
    rng = np.random.default_rng(seed)
    draws = {k: [] for k in point}
    for _ in range(resamples):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        for k, v in _scores(labels[idx], parsed[idx]).items():
            draws[k].append(v)
    out = {k: {"value": v, "ci_low": float(np.percentile(draws[k], 2.5)), "ci_high": float(np.percentile(draws[k], 97.5))}
           for k, v in point.items()}
    out["unclear"] = {"value": float(np.sum(parsed == -1))}
    return out


def ask(captioner, questions: Sequence[Question], image_dir: str | Path, batch_size: int = 8) -> list[str]:
    """Each question put to ``captioner`` (a :class:`mils.components.vlm_captioners.VLMCaptioner`) with its image
    from ``image_dir``; the free-form answers, in order."""
    from tqdm.auto import tqdm

    from mils.media import load_image

    folder = Path(image_dir)
    missing = sorted({q.image for q in questions if not (folder / q.image).is_file()})
    if missing:
        raise MissingInputError(f"{len(missing)} POPE images are not in {folder}, e.g. {missing[:3]}")
    answers: list[str] = []
    for start in tqdm(range(0, len(questions), batch_size), desc="POPE questions", unit="batch"):
        batch = questions[start : start + batch_size]
        answers += captioner.answer([load_image(folder / q.image) for q in batch], [q.text for q in batch])
    return answers
