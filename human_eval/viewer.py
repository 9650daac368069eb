"""`mils view RESULTS`: a local page that shows what the loop did to each sample.

The sample table (step-0 score, final score, Δ, empty replies, failures; sorted, filtered and
paged on the server, so a 5,000-sample run sends one page at a time) and, per sample, the media,
the score by step, the best text and the kept top-K at every step, and the raw LLM replies with
the lines that became candidates marked. Texts are sent as data and shown as text. Media are
served only as the file a sample's result names, or from inside the results folder (text-to-image
and style runs keep the best image of every step there); a client never names a path.
"""

from __future__ import annotations

import dataclasses
import functools
import mimetypes
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from tqdm.auto import tqdm

from evaluation.finished_run import FinishedRun
from evaluation.run_report import folder_headline
from mils.engine import SampleResult, annotate_reply
from mils.errors import InputError, MissingInputError
from mils.files import write_atomic
from mils.media import AUDIO_EXTS, IMAGE_EXTS, VIDEO_EXTS, media_problem, modality_of
from mils.storage import (
    ResultStore,
    RunFolder,
    finite_or_null,
    read_result_file,
    result_from_dict,
    trusted_media_root,
    without_heavy,
)

PAGE_SIZE_MAX = 500
SORTS = ("id", "step0", "final", "delta", "gain")  # "gain": the improvement, whichever way the scorer points
FILTERS = ("all", "no_gain", "gain", "hurt", "failed", "empty")
INDEX_VERSION = 2  # .viewer_index.json's rows; 2: each row's score direction


@dataclass
class Row:
    sample_id: str
    step0: float | None = None
    final: float | None = None
    steps: int = 0
    empty_replies: int = 0
    caption: str = ""
    error: str | None = None
    higher_is_better: bool = True  # the direction the result file recorded
    path: Path | None = None  # the sample's result file (read again when the sample is opened)

    @property
    def delta(self) -> float | None:
        return None if self.final is None or self.step0 is None else self.final - self.step0

    def as_dict(self, lower_is_better: bool) -> dict[str, Any]:
        gain = None if self.delta is None else (-self.delta if lower_is_better else self.delta)
        return {"sample_id": self.sample_id, "step0": self.step0, "final": self.final, "delta": self.delta,
                "gain": gain, "steps": self.steps, "empty_replies": self.empty_replies, "caption": self.caption,
                "error": self.error}


class RunIndex:
    """The summary row of every sample of one run, built once; a sample's full record is read
    from its file when it is opened. A run is a results folder (``samples/``, ``failed/``) or the
    output of an older `mils t2i` / `mils style` (``result.json`` beside its step images, or one such
    folder per prompt)."""

    def __init__(self, folder: str | Path, media_roots: tuple[str | Path, ...] = (),
                 references: dict[str, list[str]] | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.references, self.run = references or {}, FinishedRun(self.folder)  # references: cli's folder_references
        if not self.folder.is_dir():
            raise MissingInputError(f"no such results folder: {folder}")
        self.rows: dict[str, Row] = {}
        self.step_images: dict[str, list[Path]] = {}
        self.problems: list[tuple[Path, str]] = []  # files that could not be read: listed, the rest shown
        if RunFolder(self.folder).samples.is_dir():
            self.rows = {row.sample_id: row for row in _summaries(self.folder, self.problems)}
        else:
            for path, result in _image_task_files(self.folder, self.problems):
                self.rows[result.sample_id] = _row(result, path)
                self.step_images[result.sample_id] = sorted(path.parent.glob("step*.png"))  # beside its result
        if RunFolder(self.folder).failed.is_dir():
            for sample_id, error in ResultStore(self.folder).failures(self.problems).items():
                self.rows.setdefault(sample_id, Row(sample_id, error=error))
        directions = {r.higher_is_better for r in self.rows.values() if r.error is None}
        if len(directions) > 1:
            self.problems.append((self.folder, "its results mix a maximised and a minimised scorer: gains are "
                                               "shown as higher-is-better"))
        self.lower_is_better = directions == {False}
        self.config = _config(self.folder, self.problems)
        self.headline = folder_headline(self.folder, self.problems)
        # media are served from the results folder, the dataset root the run recorded, and those given
        recorded, untrusted = trusted_media_root(self.folder)
        if untrusted and not media_roots:
            self.problems.append((RunFolder(self.folder).media, untrusted))
        roots = [self.folder, *(Path(r) for r in media_roots), *([recorded] if recorded else [])]
        self.media_roots = [r.expanduser().resolve() for r in roots]

    def page(self, sort: str = "id", descending: bool = False, filter: str = "all", offset: int = 0,
             limit: int = 50) -> dict[str, Any]:
        if sort not in SORTS or filter not in FILTERS:
            raise InputError(f"sort is one of {SORTS}, filter one of {FILTERS}")
        rows = [r.as_dict(self.lower_is_better) for r in self.rows.values()]
        keep = {"all": lambda r: True, "failed": lambda r: r["error"] is not None,
                "empty": lambda r: r["empty_replies"] > 0,
                "no_gain": lambda r: r["gain"] is not None and r["gain"] <= 0,
                "gain": lambda r: r["gain"] is not None and r["gain"] > 0,
                "hurt": lambda r: r["gain"] is not None and r["gain"] < 0}[filter]
        rows = [r for r in rows if keep(r)]
        key = "sample_id" if sort == "id" else sort
        missing = [r for r in rows if r[key] is None]  # failed samples have no scores: always last
        rows = sorted((r for r in rows if r[key] is not None), key=lambda r: r[key], reverse=descending) + missing
        limit = max(1, min(limit, PAGE_SIZE_MAX))
        return {"total": len(rows), "offset": offset, "rows": rows[offset : offset + limit],
                "lower_is_better": self.lower_is_better, "samples": len(self.rows),
                "failed": sum(r.error is not None for r in self.rows.values()),
                "name": _text(self.config.get("name")), "task": _text(self.config.get("task")),
                "headline": self.headline, "problem_count": len(self.problems),  # every page names the first few, not all (100k corrupt: 18 MB)
                "problems": [[_shown_path(path, self.folder), problem] for path, problem in self.problems[:PROBLEMS_SHOWN]]}

    def result(self, sample_id: str) -> SampleResult:
        row = self.rows.get(sample_id)
        if row is None:
            raise KeyError(sample_id)
        if row.path is None:
            raise InputError(f"sample {sample_id} failed: {row.error}")
        return result_from_dict(read_result_file(row.path), row.path)

    def detail(self, sample_id: str) -> dict[str, Any]:
        """Everything the sample page shows (texts as plain strings; the page never parses them as HTML)."""
        r = self.result(sample_id)
        steps = []
        for n, record in enumerate(r.history):
            trace = r.trace[n] if n < len(r.trace) else None
            new = [t for t, _ in trace.new] if trace else []
            reply = r.raw_replies[n - 1] if 0 < n <= len(r.raw_replies) else None
            steps.append({
                "step": record.step, "best": record.best, "best_score": record.best_score,
                "mean_topk": record.mean_topk, "new_unique": record.new_unique, "empty_reply": record.empty_reply,
                "kept": [[t, _number(v)] for t, v in trace.kept] if trace else None,
                "new": [[t, _number(v)] for t, v in trace.new] if trace else None,
                "reply": [{"line": line, "parsed": parsed} for line, parsed in annotate_reply(reply, new)]
                if reply is not None else None,
            })
        return {"sample_id": r.sample_id, "media": self._media(r), "steps": steps, "metrics": self._metrics(r),
                "references": [_text(t) for t in self.references.get(sample_id, [])],
                "stopped_early_at": r.stopped_early_at, "lower_is_better": self.lower_is_better,
                "final_kept": [[t, _number(v)] for t, v in r.kept]}

    def _metrics(self, r: SampleResult) -> dict[str, dict[str, float]]:
        """The sample's own metric scores (x100) at step 0 and final, where the run's metrics cache has them."""
        scores = self.run.sample_metrics  # read once, when a sample is first opened
        found = {"step 0": scores.get((r.sample_id, r.initial.best)), "final": scores.get((r.sample_id, r.history[-1].best))}
        return {step: values for step, values in found.items() if values}

    def _media(self, r: SampleResult) -> dict[str, Any]:
        kind = modality_of(r.media) if r.media and Path(r.media).suffix.lower() in KNOWN_MEDIA else None
        images = self.step_images.get(r.sample_id) or sorted(RunFolder(self.folder).step_images(r.sample_id).glob("step*.png"))
        return {"kind": kind, "url": f"/media?id={quote(r.sample_id, safe='')}" if kind else None,
                "steps": [f"/files/{quote(p.relative_to(self.folder).as_posix())}" for p in images]}

    def media_file(self, sample_id: str) -> Path:
        """The file a sample's result names (a client never chooses the path), served only when it
        is a real image, video or audio file (by its content, not only its name) that resolves,
        symlinks followed, inside the results folder or a media root."""
        media = self.result(sample_id).media
        if not media:
            raise KeyError(sample_id)
        path = Path(media).resolve()
        if (not path.is_file() or path.suffix.lower() not in KNOWN_MEDIA or Path(media).suffix.lower() != path.suffix.lower()
                or not any(path.is_relative_to(root) for root in self.media_roots) or _checked_media(path)):
            raise KeyError(sample_id)
        return path

    def run_file(self, relative: str) -> Path:
        """A file inside the results folder, refusing anything that resolves outside it."""
        path = (self.folder / relative).resolve()
        if not path.is_relative_to(self.folder) or not path.is_file() or path.suffix.lower() not in MEDIA_SUFFIXES:
            raise KeyError(relative)
        return path


MEDIA_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif"}
KNOWN_MEDIA = IMAGE_EXTS | VIDEO_EXTS | AUDIO_EXTS


def _image_task_files(folder: Path, problems: list[tuple[Path, str]]) -> list[tuple[Path, SampleResult]]:
    files = [folder / "result.json"] if (folder / "result.json").is_file() else sorted(folder.glob("*/result.json"))
    if not files:
        raise MissingInputError(f"{folder} is not a run: no samples/ (a results folder) and no result.json "
                                "(a `mils t2i` or `mils style` output)")
    out = []
    for path in files:
        try:
            out.append((path, result_from_dict(read_result_file(path), path)))
        except InputError as err:
            problems.append((path, str(err)))
    return out


def _checked_media(path: Path) -> str | None:
    """:func:`media_problem` once per file version (a 12000 x 12000 image: 3 s and 430 MB a request)."""
    stat = path.stat()
    return _media_problem_of(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _media_problem_of(path: Path, size: int, mtime_ns: int) -> str | None:
    return media_problem(path)


def _config(folder: Path, problems: list[tuple[Path, str]]) -> dict[str, Any]:
    path = RunFolder(folder).config
    try:
        config = read_result_file(path) if path.is_file() else {}
    except InputError as err:
        problems.append((path, f"unreadable run config: {err}"))
        return {}
    if not isinstance(config, dict):
        problems.append((path, "the run config is not a JSON object"))
    return config if isinstance(config, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _shown_path(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def _summary(path: Path) -> Row:
    return _row(result_from_dict(without_heavy(read_result_file(path)), path), path)


def _row(result: SampleResult, path: Path) -> Row:
    return Row(result.sample_id, result.initial.best_score, result.score, len(result.history) - 1,
               sum(h.empty_reply for h in result.history), result.caption, None, result.higher_is_better, path)


def _cached_row(entry: Any, stamp: list[int], path: Path) -> Row | None:
    """A row from ``.viewer_index.json`` when it is one for this very file (anything else: None)."""
    try:
        if entry[0] == stamp and isinstance(entry[1], dict):
            row = Row(**entry[1], path=path)
            if isinstance(row.sample_id, str) and isinstance(row.caption, str):
                return row
    except (TypeError, IndexError, KeyError):
        pass
    return None


PROBLEMS_SHOWN = 20
INDEX_BYTES_PER_FILE = 64 * 1024  # a cached row is ~1 KB: its caption, scores and counts


def _summaries(folder: Path, problems: list[tuple[Path, str]]) -> list[Row]:
    """One row per ``samples/*.json``, kept in ``.viewer_index.json`` (5,000 full results take seconds
    to read) keyed by each file's size and time: a later open reads only the files that changed. A
    file that cannot be read is listed in ``problems``; the others are shown."""
    cache_path = RunFolder(folder).viewer_index
    files = sorted(RunFolder(folder).samples.glob("*.json"))
    try:  # a cache far larger than its rows can be (a folder from elsewhere: 6 GB) is not read, but rebuilt
        small = cache_path.is_file() and cache_path.stat().st_size <= INDEX_BYTES_PER_FILE * (len(files) + 16)
        index = orjson.loads(cache_path.read_bytes()) if small else {}
        cached = index.get("files", {}) if index.get("version") == INDEX_VERSION else {}
    except (orjson.JSONDecodeError, AttributeError, OSError):
        cached = {}
    cached = cached if isinstance(cached, dict) else {}
    rows, fresh, changed = [], {}, False
    for path in tqdm(files, desc="reading results", unit="sample", disable=len(files) < 500, leave=False):
        try:
            stat = path.stat()
            stamp = [stat.st_mtime_ns, stat.st_size]
            row = _cached_row(cached.get(path.name), stamp, path)
            if row is None:
                row, changed = _summary(path), True
        except (InputError, OSError) as err:
            problems.append((path, str(err)))
            changed = True
            continue
        fresh[path.name] = [stamp, {k: v for k, v in dataclasses.asdict(row).items() if k != "path"}]
        rows.append(row)
    if changed or len(fresh) != len(cached):
        try:
            write_atomic(cache_path, orjson.dumps({"version": INDEX_VERSION, "files": fresh}))
        except (OSError, TypeError):  # a read-only results folder: no cache, nothing else changes
            pass
    return rows


def _number(value) -> float | list[float]:
    return [float(v) for v in value] if isinstance(value, tuple) else float(value)


def frame_strip(path: Path, frames: int = 6):
    """A video's frames side by side (one PNG), for the sample page."""
    import io

    from PIL import Image

    from mils.media import sample_frames

    images = [f.convert("RGB") for f in sample_frames(path, frames)]
    height = 120
    scaled = [im.resize((max(1, round(im.width * height / im.height)), height)) for im in images]
    strip = Image.new("RGB", (sum(im.width for im in scaled), height), "white")
    x = 0
    for im in scaled:
        strip.paste(im, (x, 0))
        x += im.width
    buffer = io.BytesIO()
    strip.save(buffer, "PNG")
    return buffer.getvalue()


TOKEN_COOKIE = "mils_view"


def create_app(index: RunIndex, token: str | None = None, loopback_only: bool = True) -> FastAPI:
    """The viewer's routes. ``token``: every request must carry it (``?token=`` once, then a
    cookie), which a server bound to anything but loopback needs; a loopback one checks the Host
    header instead (see :mod:`human_eval.web_safety`)."""
    from fastapi import Response

    from human_eval.web_safety import Guard

    app = FastAPI(title=f"MILS run viewer: {index.folder.name}", docs_url=None, redoc_url=None, openapi_url=None)
    if token is not None:
        _require_token(app, token)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (Path(__file__).with_name("viewer.html")).read_text()

    @app.get("/viewer.js")
    def script() -> Response:
        return Response((Path(__file__).with_name("viewer.js")).read_text(), media_type="text/javascript")

    @app.get("/api/samples")
    def samples(sort: str = "id", desc: bool = False, filter: str = "all", offset: int = 0, limit: int = 50) -> dict:
        try:
            return finite_or_null(index.page(sort, desc, filter, max(0, offset), limit))
        except InputError as err:
            raise HTTPException(400, str(err)) from err

    @app.get("/api/sample")
    def sample(id: str) -> dict:
        try:
            return finite_or_null(index.detail(id))
        except KeyError as err:
            raise HTTPException(404, "no such sample in this run") from err
        except InputError as err:
            raise HTTPException(409, str(err)) from err

    @app.get("/media")
    def media(id: str) -> Response:
        try:
            path = index.media_file(id)
        except (KeyError, InputError) as err:
            raise HTTPException(404, "no media for this sample") from err
        if modality_of(path) == "video":
            return Response(frame_strip(path), media_type="image/png")
        return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    @app.get("/files/{relative:path}")
    def files(relative: str) -> FileResponse:
        try:
            return FileResponse(index.run_file(relative))
        except KeyError as err:
            raise HTTPException(404, "no such image in this results folder") from err

    return Guard(app, loopback_only=loopback_only)


def _require_token(app: FastAPI, token: str) -> None:
    """Every request carries ``token``: ``?token=`` on the link, then an HttpOnly cookie."""
    from fastapi import Request, Response

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            return Response('{"detail": "this viewer needs its link (with ?token=...)"}', 403,
                            media_type="application/json")
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response
