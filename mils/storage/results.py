"""Per-sample results on disk: one JSON file per finished sample, written atomically.

A killed run leaves only whole files behind, so re-running the same configuration skips what is
done and recomputes nothing; the final result set is the same as an uninterrupted run's. Files
carry a schema version; :func:`result_from_dict` rebuilds the typed :class:`SampleResult` and
names the file when it is from another version or not a result at all.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from mils.engine.records import SampleResult, StepCost, StepRecord, StepTrace, Value
from mils.errors import InputError, StorageError
from mils.files import content_hash, own_folder, write_atomic, written
from mils.storage.run_folder import RunFolder, read_result_file

if TYPE_CHECKING:
    pass

SCHEMA_VERSION = 4  # 2: per-step cost records; 3: per-step trace; 4: the score's direction (older: read as higher)


def _file_name(sample_id: str) -> str:
    return content_hash(sample_id, 20) + ".json"


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as JSON at ``path``, whole or not at all (a temporary file renamed over it)."""
    _write_atomic(path, payload)


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    try:
        write_atomic(path, json.dumps(finite_or_null(payload), ensure_ascii=False, allow_nan=False))
    except OSError as err:
        raise StorageError(f"could not write {path.name} in {path.parent} ({err.strerror or err}); the results "
                           "written before are intact: free some space (or fix the folder) and rerun to go on") from err


def result_to_dict(result: SampleResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "sample_id": result.sample_id,
        "media": result.media,
        "caption": result.caption,  # for readers of the raw files; rebuilt from the history
        "score": result.score,
        "higher_is_better": result.higher_is_better,
        "history": [asdict(h) for h in result.history],
        "kept": [[t, _value(v)] for t, v in result.kept],
        "stopped_early_at": result.stopped_early_at,
        "raw_replies": result.raw_replies,
        "cost": [asdict(c) for c in result.cost],
        "trace": _pack_trace(result.trace),
    }


def _value(v: Value) -> float | list[float]:
    return list(v) if isinstance(v, tuple) else v


def _pack_trace(trace: list[StepTrace]) -> dict[str, Any]:
    """Steps repeat most of their kept texts: each text is stored once, steps refer to it by index."""
    texts: dict[str, int] = {}

    def pack(pairs):
        return [[texts.setdefault(t, len(texts)), _value(v)] for t, v in pairs]

    steps = [{"kept": pack(s.kept), "new": pack(s.new)} for s in trace]
    return {"texts": list(texts), "steps": steps}


def finite_or_null(value: Any) -> Any:
    """JSON has no NaN (orjson, the reader, rejects it): a NaN score is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


class _Reader:
    """Every field of a result file, checked for its type as it is read: result folders are shared,
    and a field that is not what it claims (a string as a step number, a dict as a caption) is
    refused here, naming the file and the field, before anything shows or computes with it."""

    def __init__(self, source: str | Path) -> None:
        self.source = source

    def fail(self, where: str, value: Any, what: str) -> InputError:
        return InputError(f"{self.source}: {where} is not {what} ({_short(value)})")

    def number(self, value: Any, where: str) -> float:
        if value is None:  # a NaN score, written as null
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, value, "a number")
        return float(value)

    def score(self, value: Any, where: str) -> Value:
        if isinstance(value, list):
            return tuple(self.number(v, where) for v in value)
        return self.number(value, where)

    def integer(self, value: Any, where: str, optional: bool = False) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, value, "a whole number")
        return value

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, value, "true or false")
        return value

    def text(self, value: Any, where: str, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(where, value, "text")
        return value

    def items(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise self.fail(where, value, "a list")
        return value

    def record(self, h: Any, n: int) -> StepRecord:
        where = f"history[{n}]"
        if not isinstance(h, dict):
            raise self.fail(where, h, "a step record")
        return StepRecord(self.integer(h.get("step"), where + ".step"), self.text(h.get("best"), where + ".best"),
                          self.number(h.get("best_score"), where + ".best_score"),
                          self.number(h.get("mean_topk"), where + ".mean_topk"),
                          self.integer(h.get("new_unique"), where + ".new_unique"),
                          bool(h.get("empty_reply", False)),
                          None if h.get("scored_mean") is None else self.number(h["scored_mean"], where + ".scored_mean"))

    def pairs(self, value: Any, where: str, texts: list[str] | None = None) -> list[tuple[str, Value]]:
        out = []
        for i, pair in enumerate(self.items(value, where)):
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail(f"{where}[{i}]", pair, "a [text, score] pair")
            text = pair[0]
            if texts is not None:
                index = self.integer(text, f"{where}[{i}]")
                if not 0 <= index < len(texts):
                    raise self.fail(f"{where}[{i}]", text, f"an index into the {len(texts)} trace texts")
                text = texts[index]
            out.append((self.text(text, f"{where}[{i}]"), self.score(pair[1], f"{where}[{i}]")))
        return out

    def cost(self, c: Any, n: int) -> StepCost:
        where = f"cost[{n}]"
        if not isinstance(c, dict):
            raise self.fail(where, c, "a cost record")
        return StepCost(self.integer(c.get("step"), where + ".step"),
                        self.integer(c.get("prompt_tokens"), where + ".prompt_tokens", optional=True),
                        self.integer(c.get("generated_tokens"), where + ".generated_tokens", optional=True),
                        self.number(c.get("llm_seconds"), where + ".llm_seconds"),
                        self.integer(c.get("candidates_scored"), where + ".candidates_scored"),
                        self.number(c.get("scorer_seconds"), where + ".scorer_seconds"),
                        self.number(c.get("renders", 0.0), where + ".renders"),
                        *(self.integer(c.get(k, 0), f"{where}.{k}") for k in
                          ("cached_prompt_tokens", "cached_generated_tokens", "reasoning_tokens")))

    def trace(self, raw: Any) -> list[StepTrace]:
        if not raw:
            return []
        if not isinstance(raw, dict):
            raise self.fail("trace", raw, "a trace")
        texts = [self.text(t, "trace.texts") for t in self.items(raw.get("texts"), "trace.texts")]
        steps = []
        for n, step in enumerate(self.items(raw.get("steps"), "trace.steps")):
            if not isinstance(step, dict):
                raise self.fail(f"trace.steps[{n}]", step, "a step")
            steps.append(StepTrace(self.pairs(step.get("kept", []), f"trace.steps[{n}].kept", texts),
                                   self.pairs(step.get("new", []), f"trace.steps[{n}].new", texts)))
        return steps


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def result_from_dict(raw: Any, source: str | Path = "<memory>") -> SampleResult:
    """The typed result of a result file's content (``source`` names it in errors); every field is
    checked for its type (see :class:`_Reader`)."""
    if not isinstance(raw, dict) or "sample_id" not in raw or "history" not in raw:
        raise InputError(f"{source} is not a MILS sample result (no sample_id/history)")
    version = raw.get("schema", 0)
    if version not in (0, 1, 2, 3, SCHEMA_VERSION):  # 0: files written before the version field, same layout
        raise InputError(f"{source} has result schema {_short(version)}; this version of the suite reads "
                         f"{SCHEMA_VERSION}: rerun the config, or open it with the suite that wrote it")
    read = _Reader(source)
    history = [read.record(h, n) for n, h in enumerate(read.items(raw["history"], "history"))]
    if not history:
        raise InputError(f"{source}: empty step history")
    return SampleResult(
        read.text(raw["sample_id"], "sample_id"), history, read.pairs(raw.get("kept", []), "kept"),
        read.integer(raw.get("stopped_early_at"), "stopped_early_at", optional=True),
        [read.text(r, "raw_replies") for r in read.items(raw.get("raw_replies", []), "raw_replies")],
        read.text(raw.get("media"), "media", optional=True),
        [read.cost(c, n) for n, c in enumerate(read.items(raw.get("cost", []), "cost"))], read.trace(raw.get("trace")),
        read.flag(raw["higher_is_better"], "higher_is_better") if "higher_is_better" in raw else _legacy_direction(history))


def _legacy_direction(history: list[StepRecord]) -> bool:
    """A file from before schema 4 did not record its direction: the best-ever score never gets
    worse, so a final below step 0 was minimised (unchanged scores read as higher-is-better)."""
    return not history[-1].best_score < history[0].best_score


def direction(results: Iterable[SampleResult], what: str = "the results") -> bool:
    """Whether higher scores are better for ``results`` (True for none); results scored in both
    directions are not one run, and comparing them would be wrong: an InputError."""
    found = {r.higher_is_better for r in results}
    if len(found) > 1:
        raise InputError(f"{what} mix a maximised and a minimised scorer: they are not one run")
    return found.pop() if found else True


def without_heavy(raw: Any) -> Any:
    """A result file's JSON without its per-step trace, raw replies and final kept set."""
    if isinstance(raw, dict):
        for heavy in ("trace", "raw_replies", "kept"):
            raw.pop(heavy, None)
    return raw


class ResultStore:
    """``<dir>/samples/*.json`` for finished samples, ``<dir>/failed/*.json`` for failures.
    ``scorer``: ``{name, options}`` (its effective options), recorded in each result it writes."""

    def __init__(self, directory: str | Path, scorer: dict[str, Any] | None = None) -> None:
        self.directory = Path(directory)
        self.scorer = scorer
        own_folder(RunFolder(self.directory).samples)
        own_folder(RunFolder(self.directory).failed)

    def has(self, sample_id: str) -> bool:
        return (RunFolder(self.directory).samples / _file_name(sample_id)).is_file()

    def write(self, result: SampleResult) -> None:
        payload = result_to_dict(result)
        if self.scorer is not None:
            payload["scorer"] = self.scorer
        _write_atomic(RunFolder(self.directory).samples / _file_name(result.sample_id), payload)
        (RunFolder(self.directory).failed / _file_name(result.sample_id)).unlink(missing_ok=True)

    def write_images(self, result: SampleResult, image_of: Callable[[str], Any]) -> list[Path]:
        """The best candidate's image of every step (``image_of(text)``: a PIL image, made by the
        scorer that rendered or edited it) as ``images/<id>/stepNN.png``; written before the result,
        so a sample on disk has its images."""
        folder = own_folder(RunFolder(self.directory).step_images(result.sample_id), base=self.directory)
        paths = []
        for record in result.history:
            path = folder / RunFolder.step_image(record.step)
            try:
                written(path, lambda buffer, text=record.best: image_of(text).save(buffer, "PNG"))
            except OSError as err:
                raise StorageError(f"could not write {path} ({err.strerror or err}); the results written before "
                                   "are intact: free some space and rerun to go on") from err
            paths.append(path)
        return paths

    def write_failure(self, sample_id: str, error: str) -> None:
        _write_atomic(RunFolder(self.directory).failed / _file_name(sample_id), {"sample_id": sample_id, "error": error})

    def _read(self, folder: str, problems: list[tuple[Path, str]] | None = None) -> Iterator[tuple[Path, Any]]:
        """Each file's JSON; a file that cannot be read raises, or with ``problems`` is listed there and skipped."""
        for path in sorted((self.directory / folder).glob("*.json")):
            try:
                yield path, read_result_file(path)
            except InputError as err:
                if problems is None:
                    raise
                problems.append((path, str(err)))

    def files(self, summary: bool = False) -> list[tuple[Path, SampleResult]]:
        """Every finished sample with the file it is stored in; ``summary``: without the per-step
        trace, raw replies and final kept set (what metrics, curves, cost and MLflow need, in a
        fraction of the memory: a 50,000-sample run's results fit in a few hundred MB)."""
        return [(path, result_from_dict(without_heavy(raw) if summary else raw, path)) for path, raw in self._read("samples")]

    def results(self, order: Iterable[str] | None = None, summary: bool = False) -> list[SampleResult]:
        """Finished samples, in ``order`` (sample ids) when given, else by id (``summary``: see :meth:`files`)."""
        records = {r.sample_id: r for _, r in self.files(summary)}
        ids = [i for i in order if i in records] if order is not None else sorted(records)
        return [records[i] for i in ids]

    def failures(self, problems: list[tuple[Path, str]] | None = None) -> dict[str, str]:
        """{sample id: error} of the recorded failures (``problems``: see :meth:`_read`)."""
        out = {}
        for path, raw in self._read("failed", problems):
            if isinstance(raw, dict) and isinstance(raw.get("sample_id"), str) and isinstance(raw.get("error"), str):
                out[raw["sample_id"]] = raw["error"]
            elif problems is None:
                raise InputError(f"{path} is not a failure record (sample_id and error, both text)")
            else:
                problems.append((path, "not a failure record (sample_id and error, both text)"))
        return out


def matched_budget(match: Any) -> dict[str, float]:
    """``loop.match: {run: RESULTS_DIR, by: generated_tokens | llm_seconds | scorer_calls}``: the budget
    that run spent per sample on average (its ledger), so strategies compare at equal cost."""
    from mils.engine.loop import spent

    if not isinstance(match, dict) or set(match) - {"run", "by"} or "run" not in match:
        raise InputError(f"loop.match is {{run: RESULTS_DIR, by: generated_tokens}}, not {match!r}")
    by = match.get("by", "generated_tokens")
    if by not in ("generated_tokens", "llm_seconds", "scorer_calls"):
        raise InputError(f"loop.match.by is generated_tokens, llm_seconds or scorer_calls, not {by!r}")
    folder = Path(match["run"]).expanduser()
    if not RunFolder(folder).samples.is_dir():
        raise InputError(f"loop.match.run {folder} is not a results folder (no samples/)")
    results = ResultStore(folder).results(summary=True)
    ledgers = [r.cost for r in results if any(c.step > 0 for c in r.cost)]
    if not ledgers or (by == "generated_tokens" and any(c.generated_tokens is None for led in ledgers for c in led
                                                        if c.step > 0)):
        raise InputError(f"loop.match.run {folder} has no cost ledger for {by} (results written before the "
                         "ledger, or a generator that counts no tokens): give loop.budget instead")
    mean = sum(spent(led, by) for led in ledgers) / len(ledgers)
    return {by: mean if by == "llm_seconds" else max(1, round(mean))}
