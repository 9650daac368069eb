"""Export pairwise judging batches (AMT batch CSV + crowd-html form + unblinding key).

What annotators see (``amt_input.csv``, ``question.html``, ``pairs.json``, ``upload/``) never says
which side is which system; the key that does is ``key.json``, kept out of ``upload/`` and never
served by the local judging page.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from human_eval.protocol import CAPTION_AXES, IMAGE_AXES, Axis
from mils.errors import InputError, MissingInputError
from mils.files import content_hash, own_folder, real_folder, write_atomic, written
from mils.media import AUDIO_EXTS, IMAGE_EXTS, VIDEO_EXTS
from mils.storage import RunFolder, seal

log = logging.getLogger(__name__)

MEDIA_EXTS = IMAGE_EXTS | VIDEO_EXTS | AUDIO_EXTS


@dataclass(frozen=True)
class Entry:
    """One system's output for one sample: a caption (``text``) or a generated ``image``."""

    id: str
    text: str | None = None
    image: str | None = None
    context_image: str | None = None  # the image a caption describes
    prompt: str | None = None  # the text an image was generated from
    category: str | None = None


def _entry(sample_id: str, value: Any, source: Path) -> Entry:
    if isinstance(value, str):
        return Entry(sample_id, text=value)
    if isinstance(value, dict) and ("text" in value or "image" in value):
        known = {"text", "image", "context_image", "prompt", "category"}
        fields = {k: value[k] for k in known if value.get(k) is not None}
        if not all(isinstance(v, str) for v in fields.values()):
            raise InputError(f"{source}: entry {sample_id!r}: text, image, context_image, prompt and category are strings")
        for key in ("image", "context_image"):  # relative to the file, and only from its folder
            if key in fields:
                fields[key] = str(_media_file(source.parent / fields[key], [source.parent.resolve()], sample_id, source))
        return Entry(sample_id, **fields)
    raise InputError(f"{source}: entry {sample_id!r} must be a caption string or an object with 'text' or 'image'")


def _media_file(path: Path, roots: list[Path], sample_id: str, source: Path) -> Path:
    """A side's media file, refused unless it is a real image, video or audio file (by its content)
    inside one of ``roots`` (the side's own folders; symlinks followed)."""
    from mils.media import media_problem

    resolved = path.expanduser().resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise InputError(f"{source}: the media of {sample_id!r} ({path}) is outside {' and '.join(map(str, roots))}: "
                         "only a side's own files go to raters")
    if resolved.suffix.lower() not in MEDIA_EXTS:
        raise InputError(f"{source}: the media of {sample_id!r} ({path}) is not an image, video or audio file")
    problem = media_problem(resolved)
    if problem:
        raise InputError(f"{source}: the media of {sample_id!r}: {problem}")
    return resolved


def load_system(path: str | Path, stage: str = "final") -> dict[str, Entry]:
    """One side of the comparison: a benchmark results folder (captions of ``stage``: final or
    step0; the sample's image shown as context) or a JSON file id -> caption | {text|image, ...}.
    Media are checked here: a sample whose media is missing, not a media file, or outside the side's
    own folders (the results folder and the dataset folder it recorded) is refused, by name."""
    path = Path(path)
    if RunFolder(path).samples.is_dir():
        from evaluation.finished_run import FinishedRun

        roots = [path.resolve()] + _recorded_media_root(path)
        entries, missing = {}, []
        for r in FinishedRun.open(path).results(require=False):
            text = r.initial.best if stage == "step0" else r.caption
            media = None
            if r.media and (Path(r.media).suffix.lower() in MEDIA_EXTS or Path(r.media).exists()):  # not a prompt
                try:
                    media = str(_media_file(Path(r.media), roots, r.sample_id, path))
                except InputError as err:
                    missing.append(f"{r.sample_id} ({err})" if not Path(r.media).exists() else str(err))
                    continue
            entries[r.sample_id] = Entry(r.sample_id, text=text, context_image=media)
        if missing:
            raise InputError(f"{len(missing)} sample(s) of {path} have no usable media, so raters would judge "
                             f"captions without their picture: {'; '.join(missing[:5])}")
        if not entries:
            raise InputError(f"results folder {path} has no finished samples")
        return entries
    if not path.is_file():
        raise MissingInputError(f"results not found: {path} (a benchmark results folder or a JSON file)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise InputError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{path} must be a non-empty JSON object: id -> caption or entry")
    return {k: _entry(k, v, path) for k, v in raw.items()}


def _recorded_media_root(folder: Path) -> list[Path]:
    """The dataset folder a run of this user recorded in ``media.json`` (none when absent, unreadable
    or not sealed by this user: mils.storage.results.trusted_media_root)."""
    from mils.storage import trusted_media_root

    root, untrusted = trusted_media_root(folder)
    if untrusted:
        log.warning("%s", untrusted)
    return [root] if root else []


def html_cell(value: Any) -> str:
    """A cell that AMT puts into the HTML form: HTML-escaped (a caption is LLM output), and a formula
    start (= + - @) written as its character reference, which a spreadsheet does not evaluate and a
    worker's browser shows as the character (no visible quote)."""
    text = html.escape("" if value is None else str(value), quote=True)
    return f"&#{ord(text[0])};{text[1:]}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def escape_cell(value: Any) -> str:
    """Neutralise spreadsheet formula injection: a cell starting with = + - @ gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str], cell=escape_cell) -> None:
    f = io.StringIO(newline="")
    writer = csv.DictWriter(f, fieldnames=list(columns))
    writer.writeheader()
    for row in rows:
        writer.writerow({c: cell(row.get(c)) for c in columns})
    write_atomic(path, f.getvalue())


def _broken_text(text: str) -> str:
    words = text.split() or ["nothing"]
    return " ".join(reversed(words + words[:2])).lower()


def _broken_image(folder: Path) -> Path:
    from PIL import Image

    path = folder / "broken.png"
    if not path.is_file():
        Image.new("RGB", (256, 256), (128, 128, 128)).save(path)
    return path


class _Media:
    """Copies media into ``upload/`` under content-hash names (or maps them to URLs)."""

    def __init__(self, batch_dir: Path, base_url: str | None) -> None:
        # never copy through a link planted in an old batch; made at the first copy (a refused export leaves none)
        self.upload = real_folder(batch_dir / "upload", "nothing was copied: export to a new folder")
        self.base_url = base_url.rstrip("/") + "/" if base_url else None

    def __call__(self, path: str | Path | None) -> str:
        if not path:
            return ""
        source = Path(path)
        if not source.is_file():
            raise MissingInputError(f"media file not found: {source}")
        name = content_hash(source.read_bytes(), 16) + source.suffix.lower()
        target = own_folder(self.upload, then="nothing was copied: export to a new folder") / name
        if target.is_symlink() or not target.is_file():
            written(target, lambda buffer: buffer.write(source.read_bytes()))
        return (self.base_url or "upload/") + name


COLUMNS = ("pair_id", "axis", "question", "prompt", "context_url", "left_text", "left_url", "right_text",
           "right_url", "reasons")


def _broken(good: Entry, folder: Path) -> Entry:
    """A catch trial's deliberately broken side: scrambled caption or a grey image."""
    return Entry(good.id, text=_broken_text(good.text) if good.text else None,
                 image=str(_broken_image(folder)) if good.image else None)


def _check_batch(a: dict[str, Entry], b: dict[str, Entry], axes: Sequence[str], catch_fraction: float,
                 assignments: int) -> tuple[list[str], str, dict[str, Axis]]:
    """The shared sample ids, the batch kind (caption or image) and its axes, or a clear error."""
    common = sorted(set(a) & set(b))
    if not common:
        raise InputError(f"the two result sets share no sample id ({len(a)} and {len(b)} ids)")
    kind = "image" if a[common[0]].image else "caption"
    axis_table = IMAGE_AXES if kind == "image" else CAPTION_AXES
    unknown = sorted(set(axes) - set(axis_table))
    if unknown:
        raise InputError(f"unknown axes {unknown}; {kind} batches know {sorted(axis_table)}")
    if not 0 <= catch_fraction < 1:
        raise InputError(f"catch_fraction must be in [0, 1), got {catch_fraction}")
    if assignments < 1:
        raise InputError(f"assignments must be >= 1, got {assignments}")
    return common, kind, axis_table


def export_batch(
    a: dict[str, Entry],
    b: dict[str, Entry],
    out_dir: str | Path,
    axes: Sequence[str] = ("faithfulness", "quality"),
    names: tuple[str, str] = ("baseline", "mils"),
    seed: int = 0,
    assignments: int = 3,
    catch_fraction: float = 0.1,
    base_url: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Build one row per (sample, axis) with left/right randomised, plus catch trials."""
    common, kind, axis_table = _check_batch(a, b, axes, catch_fraction, assignments)
    out = own_folder(Path(out_dir), then="nothing was exported: name a new folder for the batch")
    media = _Media(out, base_url)
    rng = random.Random(seed)
    rows, key = [], {}
    # identical outputs need no judge: they are ties, recorded in the key and counted at ingest
    identical = [i for i in common if (a[i].text, a[i].image) == (b[i].text, b[i].image)]
    judged = [i for i in common if i not in set(identical)]
    if not judged:
        raise InputError(f"all {len(common)} shared samples have identical outputs in both result sets: "
                         "nothing to judge")

    def pair_id(*parts: str) -> str:
        return "p" + content_hash("|".join([str(seed), *parts]), 12)

    def side(entry: Entry) -> tuple[str, str]:
        return (entry.text or "", media(entry.image))

    for sample_id in judged:
        ea, eb = a[sample_id], b[sample_id]
        for axis_name in axes:
            left_is_a = rng.random() < 0.5
            pid = pair_id(sample_id, axis_name)
            rows.append(_row(pid, axis_table[axis_name], _context(ea, eb), *map(side, (ea, eb) if left_is_a else (eb, ea)),
                             media))
            key[pid] = {"sample_id": sample_id, "axis": axis_name, "left": "A" if left_is_a else "B",
                        "catch": False, "category": ea.category or eb.category}
    n_catch = round(len(rows) * catch_fraction)
    for n, sample_id in enumerate(rng.sample(judged * (n_catch // len(judged) + 1), n_catch) if n_catch else []):
        axis_name = axes[n % len(axes)]
        good, broken = b[sample_id], _broken(b[sample_id], out)
        good_left = rng.random() < 0.5
        pid = pair_id("catch", str(n), sample_id, axis_name)
        rows.append(_row(pid, axis_table[axis_name], _context(good, a[sample_id]),
                         *map(side, (good, broken) if good_left else (broken, good)), media))
        key[pid] = {"sample_id": sample_id, "axis": axis_name, "catch": True, "good": "left" if good_left else "right"}
    rng.shuffle(rows)
    write_csv(out / "amt_input.csv", rows, COLUMNS, cell=html_cell)
    write_atomic(out / "pairs.json", json.dumps(rows, indent=1))
    write_atomic(out / "question.html", question_template(kind))
    manifest = {"names": {"A": names[0], "B": names[1]}, "kind": kind, "axes": list(axes), "seed": seed,
                "identical": {i: a[i].category or b[i].category for i in identical},
                "assignments": assignments, "pairs": key, "mlflow_run_id": run_id, "base_url": base_url,
                "mlflow_seal": seal(out, run_id) if run_id else ""}  # ingest logs there only if this user sealed it
    write_atomic(out / "key.json", json.dumps(manifest, indent=1))
    return manifest


def _context(first: Entry, other: Entry) -> Entry:
    """What a rater sees above a pair: the image and prompt of whichever side has them (a JSON file
    of captions has no image; the results folder beside it does), ``first``'s when both do."""
    return replace(first, context_image=first.context_image or other.context_image,
                               prompt=first.prompt or other.prompt)


def _row(pid: str, axis: Axis, context: Entry, left: tuple[str, str], right: tuple[str, str], media) -> dict:
    show = axis.show_prompt
    return {
        "pair_id": pid, "axis": axis.name, "question": axis.question,
        "prompt": (context.prompt or "") if show else "",
        "context_url": media(context.context_image) if show and context.context_image else "",
        "left_text": left[0], "left_url": left[1], "right_text": right[0], "right_url": right[1],
        "reasons": "|".join(axis.reasons),
    }


def question_template(kind: str) -> str:
    """The AMT HIT layout (crowd-html-elements): the pair, the preference, then the reasons."""
    reasons = "".join(
        f'<label><input type="checkbox" name="reason_{i}"> <span class="r{i}"></span></label><br>'
        for i in range(5)
    )
    shown = ('<img src="${left_url}" style="max-width:45%"> <img src="${right_url}" style="max-width:45%">'
             if kind == "image" else
             '<p><b>Left:</b> ${left_text}</p><p><b>Right:</b> ${right_text}</p>')
    return f"""<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form answer-format="flatten-objects">
  <input type="hidden" name="pair_id" value="${{pair_id}}">
  <p>${{prompt}}</p>
  <img src="${{context_url}}" style="max-height:300px" onerror="this.style.display='none'">
  {shown}
  <h3>1. ${{question}}</h3>
  <label><input type="radio" name="choice" value="left" required> Left</label>
  <label><input type="radio" name="choice" value="right"> Right</label>
  <h3>2. Why? Tick every reason that applies.</h3>
  {reasons}
  <script>
    "${{reasons}}".split("|").forEach(function (r, i) {{
      var s = document.querySelector(".r" + i); if (s) s.textContent = r; }});
  </script>
</crowd-form>
<!-- generated by mils human-eval export; {html.escape(kind)} batch -->
"""


__all__ = ["Entry", "escape_cell", "html_cell", "export_batch", "load_system", "question_template", "write_csv"]
