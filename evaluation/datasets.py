"""Benchmark loaders: read the standard files from user-given paths, yield samples.

Every loader returns a :class:`Dataset`: the readable samples plus the ones that were skipped,
each with its reason, so nothing disappears silently. Missing annotation files raise an error
naming the path; a missing or unreadable media file skips that sample (reported).
"""

from __future__ import annotations

import csv
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from mils.config import DatasetConfig, pair_id, prompt_id
from mils.errors import InputError, MissingInputError
from mils.media import AUDIO_EXTS, IMAGE_EXTS, VIDEO_EXTS, media_problem, sample_media_problem
from mils.protocols import Sample
from mils.registry import checked_options, create, get_factory, register

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class EvalSample:
    id: str
    media: Path | str | dict[str, Path] | None  # a file; a text sample's text (a prompt); style transfer's pair
    references: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_sample(self) -> Sample:
        """The loop's sample: the media, and the texts of ``meta`` (a task's prompt slots, e.g. a question)."""
        return Sample(self.id, self.media, fields={k: v for k, v in self.meta.items() if isinstance(v, str)})


@dataclass
class Dataset:
    """A benchmark split. ``rows`` are all its samples in file order, unchecked; the media and
    reference checks run on first use of ``samples``/``skipped``, so after :meth:`subsample`
    only the drawn samples are checked: an unreadable file outside the subset changes neither
    which samples are drawn nor the run's failures."""

    name: str
    rows: list[EvalSample]
    check: Callable[[Path], str | None] | None = None
    need_references: bool = False
    original: int | None = None  # the split's size before any subsample
    _checked: tuple[list[EvalSample], list[tuple[str, str]]] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def samples(self) -> list[EvalSample]:
        return self._check()[0]

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(sample id, reason) for each drawn sample that cannot be run."""
        return self._check()[1]

    @property
    def total(self) -> int:
        """The split's size before any subsample (for cost projections)."""
        return self.original if self.original is not None else len(self.rows)

    def counts(self) -> dict[str, int]:
        """``original`` (the split), ``drawn`` (after any subsample), ``skipped`` (drawn, unusable)."""
        return {"original": self.total, "drawn": len(self.rows), "skipped": len(self.skipped)}

    def references(self) -> dict[str, list[str]]:
        return {s.id: list(s.references) for s in self.samples}

    def subsample(self, limit: int | None, seed: int = 0, sampler: str = "numpy") -> "Dataset":
        """A fixed random subset of ``limit`` samples (the paper's ablations use 1,000 COCO images),
        in dataset order, drawn from the whole split before any sample is checked. ``sampler=
        "official"`` draws it as the MILS code does, ``random.seed(seed)`` then ``random.sample``
        over the split in file order (the same images for the same list)."""
        if limit is not None and limit < 1:
            raise InputError(f"limit must be >= 1, got {limit}")
        if limit is None or limit >= len(self.rows):
            return self
        if sampler == "official":
            keep = sorted(random.Random(seed).sample(range(len(self.rows)), limit))
        else:
            keep = np.sort(np.random.default_rng(seed).choice(len(self.rows), limit, replace=False))
        return Dataset(self.name, [self.rows[i] for i in keep], self.check, self.need_references, self.total)

    def _check(self) -> tuple[list[EvalSample], list[tuple[str, str]]]:
        if self._checked is None:
            self._checked = _checked(self.name, self.rows, self.check, self.need_references)
        return self._checked


def _require_file(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingInputError(f"{what} not found: {path}")
    return path


def _require_dir(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise MissingInputError(f"{what} not found: {path}")
    return path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise InputError(f"{path} is not valid JSON: {err}") from err


def _collect(
    name: str,
    rows: Iterable[tuple[str, Path | None, list[str], dict]],
    check: Callable[[Path], str | None] | None,
    need_references: bool = True,
) -> Dataset:
    samples = [EvalSample(sample_id, media, tuple(r.strip() for r in refs if r and r.strip()), meta)
               for sample_id, media, refs, meta in rows]
    return Dataset(name, samples, check, need_references)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _checked(name: str, rows: list[EvalSample], check: Callable[[Path], str | None] | None,
             need_references: bool) -> tuple[list[EvalSample], list[tuple[str, str]]]:
    samples, skipped = [], []
    for sample in rows:
        if not _utf8(sample.id):  # a file name in another encoding: every JSON write of it would fail later
            shown = sample.id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            skipped.append((shown, "its file name is not valid UTF-8: rename the file to include it"))
            continue
        problem = "no non-empty reference" if need_references and not sample.references else None
        if problem is None and check and sample.media is not None:
            problem = check(sample.media)
        if problem:
            skipped.append((sample.id, problem))
        else:
            samples.append(sample)
    for sample_id, reason in skipped[:10]:
        log.warning("%s: skipping %s: %s", name, sample_id, reason)
    if len(skipped) > 10:
        log.warning("%s: ... %d samples skipped in all", name, len(skipped))
    return samples, skipped


@register("dataset", "coco_karpathy")
def coco_karpathy(json_path: str | Path, images_root: str | Path, split: str = "test") -> Dataset:
    """COCO Karpathy split (``dataset_coco.json``); ``images_root`` holds ``val2014/`` etc."""
    path = _require_file(json_path, "Karpathy split file (dataset_coco.json)")
    root = _require_dir(images_root, "COCO image folder")
    data = _read_json(path)
    if not isinstance(data, dict) or "images" not in data:
        raise InputError(f"{path} has no 'images' list (expected the Karpathy dataset_coco.json)")
    splits = {split, "restval"} if split == "train+restval" else {split}
    rows = []
    for image in data["images"]:
        if image.get("split") not in splits:
            continue
        sample_id = str(image.get("cocoid", image.get("imgid")))
        media = root / image.get("filepath", "") / image["filename"]
        refs = [s.get("raw", " ".join(s.get("tokens", []))) for s in image.get("sentences", [])]
        rows.append((sample_id, media, refs, {"filename": image["filename"]}))
    if not rows:
        raise InputError(f"{path} has no images in split {split!r}")
    return _collect(f"coco-karpathy-{split}", rows, media_problem)


@register("dataset", "coco_captions")
def coco_captions(
    annotations_json: str | Path, images_dir: str | Path, split_ids: str | Path | Iterable[int] | None = None
) -> Dataset:
    """COCO ``captions_val2014.json`` (+ an optional list of image ids, one per line or JSON list)."""
    path = _require_file(annotations_json, "COCO captions file")
    images_dir = _require_dir(images_dir, "COCO image folder")
    data = _read_json(path)
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        raise InputError(f"{path} needs 'images' and 'annotations' (a COCO captions file)")
    refs: dict[int, list[str]] = {}
    for ann in data["annotations"]:
        refs.setdefault(int(ann["image_id"]), []).append(ann["caption"])
    files = {int(img["id"]): img["file_name"] for img in data["images"]}
    wanted = sorted(files)
    if split_ids is not None:
        if isinstance(split_ids, (str, Path)):
            id_path = _require_file(split_ids, "split id list")
            text = id_path.read_text().strip()
            wanted = [int(x) for x in (json.loads(text) if text.startswith("[") else text.split())]
        else:
            wanted = [int(x) for x in split_ids]
        unknown = [i for i in wanted if i not in files]
        if unknown:
            raise InputError(f"{len(unknown)} split ids are not in {path}, e.g. {unknown[:5]}")
    rows = [(str(i), images_dir / files[i], refs.get(i, []), {}) for i in wanted]
    return _collect("coco-captions", rows, media_problem)


@register("dataset", "msrvtt")
def msrvtt(test_videodatainfo_json: str | Path, video_dir: str | Path) -> Dataset:
    """MSR-VTT test split: ``test_videodatainfo.json`` + a folder of ``videoNNNN.mp4``."""
    path = _require_file(test_videodatainfo_json, "MSR-VTT annotation file")
    video_dir = _require_dir(video_dir, "MSR-VTT video folder")
    data = _read_json(path)
    if not isinstance(data, dict) or "sentences" not in data or "videos" not in data:
        raise InputError(f"{path} needs 'videos' and 'sentences' (test_videodatainfo.json)")
    refs: dict[str, list[str]] = {}
    for sentence in data["sentences"]:
        refs.setdefault(sentence["video_id"], []).append(sentence["caption"])
    unsplit = [v.get("video_id") for v in data["videos"] if "split" not in v]
    if unsplit:  # read as test, every one of 10,000 videos would run instead of the 2,990 test ones
        raise InputError(f"{path}: {len(unsplit)} videos carry no 'split' (e.g. {unsplit[0]!r}); give MSR-VTT's "
                         "test_videodatainfo.json, whose every video says split: test (the file the official code reads)")
    rows = []
    for video in data["videos"]:
        if video["split"] != "test":
            continue
        vid = video["video_id"]
        rows.append((vid, video_dir / f"{vid}.mp4", refs.get(vid, []), {"category": video.get("category")}))
    return _collect("msrvtt-test", rows, media_problem)


@register("dataset", "clotho")
def clotho(captions_csv: str | Path, audio_dir: str | Path) -> Dataset:
    """Clotho evaluation CSV (``file_name, caption_1..caption_5``) + its audio folder."""
    path = _require_file(captions_csv, "Clotho captions CSV")
    audio_dir = _require_dir(audio_dir, "Clotho audio folder")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        caption_cols = [c for c in fields if c.startswith("caption")]
        if "file_name" not in fields or not caption_cols:
            raise InputError(f"{path} needs columns file_name and caption_1..caption_5, has {fields}")
        # "row": the CSV row the official code names the sample's output folder by (main_audio_captioning.py:40)
        rows = [(r["file_name"], audio_dir / r["file_name"], [r[c] or "" for c in caption_cols], {"row": n})
                for n, r in enumerate(reader)]
    return _collect("clotho-eval", rows, media_problem)


@register("dataset", "drawbench")
def drawbench(csv_path: str | Path) -> Dataset:
    """DrawBench prompts (``Prompts,Category``): text-to-image samples with no media."""
    path = _require_file(csv_path, "DrawBench CSV")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"Prompts", "Category"} <= set(reader.fieldnames or []):
            raise InputError(f"{path} needs columns Prompts,Category, has {reader.fieldnames}")
        rows = [(f"drawbench-{n:03d}", r["Prompts"], [], {"prompt": r["Prompts"], "category": r["Category"], "row": n})
                for n, r in enumerate(reader) if (r["Prompts"] or "").strip()]
    return _collect("drawbench", rows, None, need_references=False)


@register("dataset", "prompts")
def prompts(prompts: list[str]) -> Dataset:
    """Prompts given in the config (`mils t2i "a red cat" ...`): ``prompt000``, ``prompt001``... in order."""
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise InputError("dataset prompts: args.prompts is a list of texts")
    rows = [(prompt_id(n), p, [], {"prompt": p}) for n, p in enumerate(prompts) if p.strip()]
    if not rows:
        raise InputError("dataset prompts: every prompt given is empty")
    return _collect("prompts", rows, None, need_references=False)


@register("dataset", "style_pairs")
def style_pairs(content: str | Path, style: str | Path) -> Dataset:
    """Style transfer's samples: every content image with every style image (``content`` and
    ``style``: an image file or a folder of them); sample id ``<content stem>+<style stem>``."""
    def images(path: str | Path, what: str) -> list[Path]:
        path = Path(path).expanduser()
        if path.is_dir():
            return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        return [_require_file(path, what)]

    rows = [(pair_id(c, s), {"content": c, "style": s}, [], {}) for c in images(content, "content image")
            for s in images(style, "style image")]
    if not rows:
        raise InputError(f"dataset style_pairs: no images in {content} or {style}")
    return _collect("style_pairs", rows, sample_media_problem, need_references=False)


@register("dataset", "folder")
def media_folder(directory: str | Path, references: str | Path | None = None) -> Dataset:
    """Any folder of images, videos or audio; references from JSON (name -> [captions]) or CSV
    (``file_name`` + ``caption*`` columns). Sample ids are file names."""
    directory = _require_dir(directory, "media folder")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS | AUDIO_EXTS)
    refs: dict[str, list[str]] = {}
    if references is not None:
        ref_path = _require_file(references, "references file")
        if ref_path.suffix.lower() == ".json":
            raw = _read_json(ref_path)
            if not isinstance(raw, dict):
                raise InputError(f"{ref_path} must map file name -> list of captions")
            refs = {k: [v] if isinstance(v, str) else list(v) for k, v in raw.items()}
        else:
            with ref_path.open(newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    refs[row["file_name"]] = [v for k, v in row.items() if k.startswith("caption") and v]
        unknown = sorted(set(refs) - {p.name for p in files})
        if unknown:
            log.warning("references for files not in %s: %s", directory, unknown[:5])
    rows = [(p.name, p, refs.get(p.name, []), {}) for p in files]

    return _collect(directory.name, rows, media_problem, need_references=references is not None)


@register("dataset", "sample")
def sample_benchmark(directory: str | Path = "outputs/sample_set") -> Dataset:
    """The bundled sample photos (written to ``directory`` if missing) with their hand-written
    reference captions."""
    from evaluation.sample_set import REFERENCES, export

    export(directory)
    return media_folder(directory, REFERENCES)


@register("dataset", "sample_heldout")
def sample_heldout(directory: str | Path = "outputs/heldout_set") -> Dataset:
    """Six more bundled photos that the demo's settings were not chosen on (no references)."""
    from evaluation.sample_set import export

    export(directory, heldout=True)
    return media_folder(directory)


def load_dataset(kind: str, args: dict[str, Any], limit: int | None = None, seed: int = 0,
                 sampler: str = "numpy") -> Dataset:
    """Build the registered dataset ``kind`` (coco_karpathy, coco_captions, msrvtt, clotho,
    drawbench, folder, sample, or a plugin's) from its arguments, then subsample."""
    return create("dataset", kind, **args).subsample(limit, seed, sampler)


def check_dataset(cfg: DatasetConfig, paths: bool = False) -> None:
    """The dataset kind exists and takes the arguments given; with ``paths``, every file or folder
    they name exists too (the commands that start a run check them before any flow starts, so a
    wrong path is one line, not two flow tracebacks after the models loaded)."""
    import inspect

    checked_options("dataset", cfg.kind, cfg.args, "dataset.args")
    if not paths:
        return
    params = inspect.signature(get_factory("dataset", cfg.kind)).parameters
    for name, value in cfg.args.items():
        required = name in params and params[name].default is params[name].empty  # one with a default may be made
        if required and "Path" in str(params[name].annotation) and isinstance(value, str):
            if not Path(value).expanduser().exists():
                raise MissingInputError(f"dataset.args.{name}: {value} not found (dataset {cfg.kind!r})")


def config_dataset(cfg: DatasetConfig) -> Dataset:
    """The dataset a run config's ``dataset`` section describes."""
    return load_dataset(cfg.kind, cfg.args, cfg.limit, cfg.seed, cfg.sampler)


def folder_dataset(cfg: DatasetConfig, folder: str | Path, instead: str) -> Dataset:
    """The dataset a finished run's config.json names, for a command that reads results (rescore,
    compare, the official export). The paths come from the folder, maybe from elsewhere: an error
    names the dataset's kind and how many arguments it had, never the paths (``/proc/self/environ``)."""
    from mils.registry import UnknownComponentError

    try:
        return config_dataset(cfg)
    except UnknownComponentError:
        raise InputError(f"{Path(folder).name}/config.json names dataset kind {cfg.kind[:60]!r}, which no module "
                         f"imported here registers (a plugin's? name it with --plugins MODULE); {instead}") from None
    except (InputError, OSError, ValueError) as err:
        raise InputError(f"the {cfg.kind!r} dataset that {Path(folder).name}/config.json names could not be loaded "
                         f"({type(err).__name__}; its {len(cfg.args)} path argument(s) are not shown: they come from "
                         f"the folder); {instead}") from None



def folder_references(folder: str | Path, instead: str) -> dict[str, list[str]]:
    """Each sample's references, from the dataset a finished run's config.json names (the texts only:
    no media is checked); an InputError ending with ``instead`` when it does not load."""
    from mils.config import read_run_config

    data = folder_dataset(read_run_config(folder).dataset, folder, instead)
    return {s.id: list(s.references) for s in data.rows}
