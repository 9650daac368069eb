"""One frozen, validated configuration per run. Raw dicts stop at :func:`load_config`.

A config is a profile (named model choices) plus overrides; ``resolved()`` gives the exact
settings a run used, which is what gets logged.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mils.config.metrics import DEFAULT_METRICS, metric_names
from mils.engine.loop import LoopOptions
from mils.engine.sampling import ADDED_LATER as SAMPLING_ADDED_LATER
from mils.engine.sampling import SamplingOptions
from mils.errors import InputError, MissingInputError
from mils.files import content_hash
from mils.registry import import_plugins, validation_problem
from mils.storage.results import matched_budget
from mils.storage.run_folder import RunFolder, read_result_file


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Price(_Frozen):
    """Dollars per million tokens, paid ones only (the response cache's replies cost nothing)."""

    prompt: float = Field(ge=0)
    generated: float = Field(ge=0)


class GeneratorConfig(SamplingOptions):
    """The LLM and its sampling settings (temperature, top_p, max_new_tokens: SamplingOptions')."""

    backend: str = "transformers"  # a registered generator: transformers, vllm, or a plugin's
    model: str
    device: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    options: dict[str, Any] = Field(default_factory=dict)  # backend extras (e.g. vLLM engine args)
    # the response cache (mils/components/response_cache.py): None = on for remote endpoints (backend openai), off otherwise
    cache: bool | None = None
    price: Price | None = None  # dollars per million tokens: the cost ledger in money


class ScorerConfig(_Frozen):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class BankRecipe(_Frozen):
    """An initial bank made after the paper's method (this suite's prompts: docs/paper_differences.md row 32): the
    run's LLM writes ``per_class`` captions for each class (ImageNet's 1000, or the names in ``labels``)."""

    per_class: int = Field(50, ge=1)
    classes: int | None = Field(None, ge=1)  # only the first N classes (quick runs)
    labels: str | None = None  # class names: a text file or AudioSet's CSV
    modality: Literal["image", "audio"] = "image"
    seed: int = 0


class BankConfig(_Frozen):
    """Exactly one of ``path`` (a text file, one caption per line), ``builtin`` or ``generate``."""

    path: str | None = None
    builtin: Literal["imagenet-templates", "none"] | None = None  # none: each sample starts from itself
    generate: BankRecipe | None = None  # made once with the run's LLM, cached by content hash
    subsample: int | None = Field(None, ge=1)
    subsample_seed: int = 0
    # official: the MILS code's draw (random.seed + random.sample over the file's lines, seed 0)
    subsample_sampler: Literal["numpy", "official"] = "numpy"
    dedup: Literal["normalised", "exact"] = "normalised"  # exact: only identical lines are one caption
    # JSON sample id -> caption (or list): another captioner's output, scored beside the bank at
    # step 0 so MILS refines it; with builtin 'none' the sample starts from these alone
    seed_captions: str | None = None
    index: Literal["exact", "hnsw"] = "exact"  # hnsw: step 0 scores a shortlist (mils/components/bank_index.py)
    shortlist: int = Field(1000, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> "BankConfig":
        if sum(x is not None for x in (self.path, self.builtin, self.generate)) != 1:
            raise InputError(
                "bank needs exactly one of 'path' (a caption file, e.g. the MILS release's "
                "image_descriptions_per_class.txt), 'builtin' ('imagenet-templates', or 'none' for "
                "text-to-image, where each prompt starts from itself) or 'generate' (the run's LLM writes it: "
                "{per_class: 50, classes: null, labels: null, modality: image})"
            )
        return self


LoopConfig = LoopOptions  # the engine's own validated options, used as the config section


class DatasetConfig(_Frozen):
    """A registered dataset loader and its arguments (paths), plus a fixed-seed subsample."""

    kind: str = "sample"
    args: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(None, ge=1)
    seed: int = 0
    # how the subsample is drawn: numpy (a seeded numpy generator) or official (Python's
    # random.seed(seed) + random.sample, as the MILS code draws its 1K ablation images)
    sampler: Literal["numpy", "official"] = "numpy"


class TrackingConfig(_Frozen):
    uri: str = "sqlite:///mlruns.db"
    experiment: str = "mils"


class ExecutorConfig(_Frozen):
    """Where shards run (the Prefect task runner of the flow; "runner" alone is :class:`TaskRunner`'s
    word). Never changes results: a sample's result depends only on its own seeds.

    ``threads``: in this process, one shard at a time (one copy of the models, one batch on the
    accelerator at a time). ``dask``: a local cluster of worker processes, one per GPU by default
    (``workers`` overrides), each pinned to its own device; or an existing cluster (``address``).
    """

    kind: Literal["threads", "dask"] = "threads"
    workers: int | None = Field(None, ge=1)  # dask: local worker processes (default: one per GPU, 1 without)
    address: str | None = None  # an existing Dask scheduler, e.g. tcp://10.0.0.5:8786
    shard_size: int = Field(8, ge=1)

    @model_validator(mode="after")
    def _parallelism_is_real(self) -> "ExecutorConfig":
        if self.kind == "threads" and (self.workers or 1) > 1:
            raise InputError(
                f"executor.workers={self.workers} with kind 'threads' would give no parallelism: the threads "
                "share one copy of the models and take turns on it (measured: 2 threads took as long as 1). "
                "Raise batch_size to use the accelerator better, or use kind 'dask' for one worker "
                "process per GPU")
        return self


# settings added after results existed: (section, field, default); left out of the result key at their default
_ADDED_LATER = (("bank", "generate", None), ("bank", "seed_captions", None), ("loop", "parser", "robust"),
                ("loop", "dedup", "normalised"), ("dataset", "sampler", "numpy"), ("", "prompts", "suite"),
                ("loop", "exploration_style", "suite"), ("bank", "subsample_sampler", "numpy"), ("bank", "index", "exact"),
                ("bank", "dedup", "normalised"), ("loop", "ties", "kept_first"), ("loop", "strategy", "mils"),
                ("loop", "strategy_options", {}), ("loop", "budget", None), ("loop", "cleanup", "none"),
                ("bank", "shortlist", 1000), *(("generator", key, default) for key, default in SAMPLING_ADDED_LATER.items()))


class RunConfig(_Frozen):
    profile: str
    name: str = "benchmark"
    task: str = "image_captioning"  # a registered task (mils/config/task_specs.py)
    plugins: tuple[str, ...] = ()  # modules imported first: they register custom components
    generator: GeneratorConfig
    scorer: ScorerConfig
    bank: BankConfig
    loop: LoopConfig = LoopConfig()
    dataset: DatasetConfig = DatasetConfig()
    # the meta-prompt: suite (this suite's wording), official (the MILS files, byte for byte), or a
    # folder with files named like the MILS repository's prompts/
    prompts: str = "suite"
    metrics: tuple[str, ...] = DEFAULT_METRICS
    # ptb: every caption PTB-tokenised (COCO practice); raw: strings as they are (the official
    # code's audio and video scoring, which the paper's audio/video tables used)
    eval_tokenize: Literal["ptb", "raw"] = "ptb"
    batch_size: int = Field(8, ge=1)
    # lockstep: a batch's samples take each step together; async: each sample advances on its own
    # (a generator that takes concurrent requests: vllm through its server). Results are the same.
    schedule: Literal["lockstep", "async"] = "lockstep"
    # async: requests in flight at once (None: the generator's own, e.g. the openai backend's
    # max_concurrency; 256 otherwise), and replies scored together (up to score_batch, waiting at most
    # score_wait seconds after the first). Results are the same.
    in_flight: int | None = Field(None, ge=1)
    score_batch: int = Field(64, ge=1)
    score_wait: float = Field(0.02, ge=0)
    cache_dir: str = Field(default_factory=lambda: os.environ.get("MILS_CACHE_DIR", "~/.cache/mils"))
    output_dir: str = "outputs/runs"
    tracking: TrackingConfig = TrackingConfig()
    # where shards run; a config written before the rename says ``runner:`` (still read)
    executor: ExecutorConfig = Field(ExecutorConfig(), validation_alias=AliasChoices("executor", "runner"))

    @model_validator(mode="after")
    def _budget_above_one_request(self) -> "RunConfig":
        """A budget one request can overshoot by more than itself is refused: the first request
        alone could spend twice the budget, and strategies would not stop at equal spend."""
        budget = self.loop.budget
        if budget is not None and budget.kind == "generated_tokens" and budget.limit < self.generator.max_new_tokens:
            raise ValueError(f"loop.budget.generated_tokens {budget.generated_tokens} is below one request's cost (up "
                             f"to generator.max_new_tokens {self.generator.max_new_tokens} tokens): raise the budget "
                             "or lower max_new_tokens")
        if budget is not None and budget.kind == "scorer_calls" and budget.limit < self.loop.requested:
            raise ValueError(f"loop.budget.scorer_calls {budget.scorer_calls} is below one request's cost (up to "
                             f"loop.requested {self.loop.requested} candidates scored)")
        return self

    @model_validator(mode="after")
    def _strategy_runs_here(self) -> "RunConfig":
        """A strategy that steers the decoding needs an in-process backend, in lockstep: refused before models load."""
        from mils.engine import get_strategy

        needs = get_strategy(self.loop.strategy, self.loop.strategy_options).needs
        if "lockstep" in needs and self.schedule != "lockstep":
            raise ValueError(f"loop.strategy {self.loop.strategy} runs in lockstep: set schedule: lockstep")
        if "transformers" in needs and self.generator.backend != "transformers":
            raise ValueError(f"loop.strategy {self.loop.strategy} steers an in-process decode: generator.backend "
                             f"transformers, not {self.generator.backend}")
        return self

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        """The results folder is ``output_dir/<name>-<key>``: a name must not lead out of it."""
        if (not name or len(name) > 200 or "/" in name or "\\" in name or name.startswith(".")
                or any(ord(c) < 32 for c in name)):
            raise ValueError(f"{name[:60]!r} is not a plain name (1-200 characters, no / or \\, not starting with "
                             "'.'): it names the results folder inside output_dir")
        return name

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str, info: ValidationInfo) -> str:
        from mils.config.task_specs import get_task

        if not _reading_back(info):
            get_task(task)  # unknown names get the registry's did-you-mean error
        return task

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """Refused when the config is built, not after the optimisation that they would score."""
        known = metric_names()
        for name in metrics:
            if name not in known and not _reading_back(info):
                close = difflib.get_close_matches(name.upper(), [m.upper() for m in known], n=1)
                hint = f"; did you mean {known[[m.upper() for m in known].index(close[0])]!r}?" if close else ""
                raise InputError(f"unknown metric {name!r} in metrics; known: {', '.join(known)}{hint}")
        return metrics

    def __setstate__(self, state: Any) -> None:
        """A config unpickled in another process (a Dask worker's shard) imports its plugins there, so
        the components it names are registered wherever it runs. The plugins of a config are imported
        in two places only: here and :func:`build_config`; a config read back from a results folder
        (:func:`read_run_config`) never imports the folder's plugins."""
        super().__setstate__(state)
        import_plugins(self.plugins)  # the built-in components register when they are first built

    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser()

    def result_key(self) -> str:
        """Hash of everything that can change a sample's result (not batch size, executor, tracking,
        metrics or paths): two configs with the same key produce the same per-sample results."""
        fields = {"task", "plugins", "generator", "scorer", "bank", "loop", "dataset", "prompts"}
        dumped = self.model_dump(include=fields, exclude={"generator": {"cache", "price"}})  # change no reply
        for section, key, default in _ADDED_LATER:  # at their defaults, they keep older runs' keys (and resume)
            if (dumped[section].get(key) if section else dumped.get(key)) == default:
                del (dumped[section] if section else dumped)[key]
        if dumped.get("prompts"):  # a folder: the text, not the path, changes results
            from mils.config.task_specs import get_task

            dumped["prompts"] = content_hash(get_task(self.task).prompt_text(self.prompts), None)
        if dumped["bank"].get("seed_captions"):  # the file's content, not its path, changes results
            path = Path(dumped["bank"]["seed_captions"]).expanduser()
            dumped["bank"]["seed_captions"] = content_hash(path.read_bytes(), None) if path.is_file() else str(path)
        payload = json.dumps(dumped, sort_keys=True, default=str)
        return content_hash(payload, 12)

    def flat(self) -> dict[str, str]:
        """Dotted key -> value, for MLflow params."""
        out: dict[str, str] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                out[prefix] = str(value)

        walk("", self.model_dump())
        return out


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build_config(profile: str, overrides: dict[str, Any] | None = None, task: str | None = None) -> RunConfig:
    """The named profile (for ``task``, default image captioning) with ``overrides`` applied."""
    from mils.config.profiles import get_profile, task_defaults

    base = get_profile(profile)
    plugins = (overrides or {}).get("plugins")
    if isinstance(plugins, (list, tuple)):  # before the task is resolved: a plugin may register it
        import_plugins([str(p) for p in plugins])
    task = task or (overrides or {}).get("task")  # a YAML's `task:` brings its defaults too
    if task:
        defaults = task_defaults(profile, task)
        if defaults.get("scorer", {}).get("name") not in (None, base.get("scorer", {}).get("name")):
            base = {**base, "scorer": {}}  # the task's own scorer: the profile's scorer options do not apply
        base = _merge(base, {**defaults, "task": task})
    new_scorer = (overrides or {}).get("scorer", {}).get("name")
    if new_scorer and new_scorer != base.get("scorer", {}).get("name"):
        base = {**base, "scorer": {}}  # another scorer: the profile's scorer options do not apply
    sources = {"path", "builtin", "generate"}
    if sources & set((overrides or {}).get("bank") or {}):  # the override names the bank: drop the profile's
        base = {**base, "bank": {k: v for k, v in base.get("bank", {}).items() if k not in sources}}
    raw = _merge(base, overrides or {})
    raw["profile"] = profile
    if isinstance(raw.get("loop"), dict) and "match" in raw["loop"]:  # a budget equal to another run's spend
        raw["loop"] = {**{k: v for k, v in raw["loop"].items() if k != "match"},
                       "budget": matched_budget(raw["loop"]["match"])}
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as err:  # one line per mistake, each naming its key
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {validation_problem(e, RunConfig)}" for e in err.errors())
        raise InputError(f"invalid run configuration (profile {profile!r}): {problems}") from err
    if config.prompts not in ("suite", "official"):  # a --prompts folder missing a file fails now, before models load
        from mils.config.task_specs import get_task

        get_task(config.task).prompt_text(config.prompts)
    from mils.config.checks import check_components

    check_components(config)
    return config


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise InputError(f"config {path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict) or "profile" not in raw:
        raise InputError(f"config {path} must be a mapping with a 'profile' key (offline or paper)")
    return raw


def _reading_back(info: ValidationInfo) -> bool:
    """A results folder's config read back (:func:`read_run_config`): a task or metric that a plugin
    registered is kept by name (the folder's plugins are never imported; a command that needs them
    takes ``--plugins``)."""
    return bool(info.context and info.context.get("read_back"))


def read_run_config(path: str | Path) -> RunConfig:
    """A results folder's ``config.json`` (a folder's or the file's path); a missing, corrupt or
    outdated file is one InputError naming it."""
    path = Path(path)
    path = RunFolder(path).config if path.is_dir() else path
    if not path.exists():
        raise MissingInputError(f"{path} not found")
    return config_read_back(read_result_file(path), str(path))


def config_read_back(raw: Any, source: str) -> RunConfig:
    """A config a run wrote (its config.json, its record's): a plugin's task or metric it names is kept
    though the plugin is not imported here; anything else wrong is one InputError naming ``source``."""
    try:
        return RunConfig.model_validate(raw, context={"read_back": True})
    except ValidationError as err:
        first = err.errors()[0]
        raise InputError(f"{source} is not a run config this suite can read ({len(err.errors())} problems; first: "
                         f"{'.'.join(map(str, first['loc'])) or 'config'}: {first['msg']})") from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None, vet=None) -> RunConfig:
    """A YAML file with ``profile:`` and any overrides of it (a ``sweep:`` section is not allowed).
    ``vet(raw) -> raw``: a check of the file's own settings before anything is built (or imported)."""
    raw = vet(read_yaml(path)) if vet else read_yaml(path)
    if "sweep" in raw:
        raise InputError(f"config {path} has a 'sweep' section: run it with `mils sweep`")
    profile = raw.pop("profile")
    return build_config(profile, _merge(raw, overrides or {}))


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """``set_dotted({}, "loop.steps", 3) == {"loop": {"steps": 3}}`` (a copy; nested dicts merged)."""
    keys = dotted.split(".")
    override: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        override = {key: override}
    return _merge(raw, override)
