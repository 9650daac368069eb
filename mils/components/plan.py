"""A run config resolved once into what the run builds and how it runs: the plan.

:func:`plan_run` is called once per run (the benchmark flow, `mils run`'s captioning, a TaskRunner
given a config). It checks the components, fills in their effective options and computes the result
key; each room then gets its part, not the whole config: the builders a component's plan, the runner
the loop and the schedule, the results folder the key and the scorer's record.

The result key still hashes the declared options (see ``RunConfig.result_key``): results folders
written before the plan existed keep their keys and resume.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

from mils import registry
from mils.components.bank import AUDIO_BANK_PROMPT, BANK_PROMPT
from mils.config.checks import check_components, scorer_options
from mils.config.run_config import BankConfig, RunConfig, ScorerConfig
from mils.config.task_specs import TaskSpec, get_task
from mils.engine.loop import LoopOptions
from mils.engine.prompts import PromptTemplate
from mils.engine.sampling import SamplingOptions, without_later_defaults
from mils.files import content_hash
from mils.protocols import Workload

REMOTE_BACKENDS = ("openai",)  # the response cache is on by default for these
IDENTITY_OPTIONS = ("base_url", "system_prompt", "reasoning_tag", "server", "served_name")  # they shape a reply


def _hash(parts: Any) -> str:
    return content_hash(json.dumps(parts, sort_keys=True, default=str), 16)


@dataclass(frozen=True)
class GeneratorPlan:
    """The LLM: its factory's keyword arguments, and whether the response cache sits in front."""

    backend: str
    model: str
    arguments: dict[str, Any]  # model, sampling, device, dtype and the backend's own options
    takes_workload: bool  # its factory sizes itself from the run's Workload (vLLM)
    cached: bool  # replies kept in the response cache (on for remote endpoints unless the config says)
    identity: str  # what shapes a reply besides the sampling settings: the response cache's key
    sampling: dict[str, Any]
    cache_dir: Path
    key: str  # the loaded model's identity in a process's model cache (not the bank, loop or task)


@dataclass(frozen=True)
class ScorerPlan:
    name: str
    options: dict[str, Any]  # effective: the factory's defaults filled in
    key: str  # the loaded model's identity in a process's model cache

    @property
    def record(self) -> dict[str, Any]:
        """The scorer's name and effective options, as each result file records them."""
        return {"name": self.name, "options": json.loads(json.dumps(self.options, default=str))}


@dataclass(frozen=True)
class BankPlan:
    """Where the initial bank comes from; ``generated``: where a generated bank is (or will be) cached."""

    config: BankConfig
    generated: Path | None
    embeddings_dir: Path  # bank embeddings, cached by scorer and bank content
    generator_model: str  # a generated bank's provenance
    batch_size: int  # prompts per generate call, when the bank is generated


@dataclass(frozen=True)
class SchedulePlan:
    """How the runner feeds samples to the loop (never changes results)."""

    kind: Literal["lockstep", "async"]
    batch_size: int
    in_flight: int | None
    score_batch: int
    score_wait: float


@dataclass(frozen=True)
class RunPlan:
    """A checked config and everything worked out from it once. ``config`` stays as declared: it is
    what ``config.json`` and MLflow record."""

    config: RunConfig
    task: TaskSpec
    key: str  # the result key
    results_dir: Path
    generator: GeneratorPlan
    scorer: ScorerPlan
    bank: BankPlan
    loop: LoopOptions
    template: PromptTemplate
    schedule: SchedulePlan
    workload: Workload  # the longest prompt the loop builds, for a generator that sizes itself
    runner_key: tuple[str, str, str]  # a process's TaskRunner is shared by runs with the same models, bank and task


def plan_run(config: RunConfig) -> RunPlan:
    """Check ``config``'s components and resolve it (see the module's docstring)."""
    effective = check_components(config)  # the plugins' components registered, every option checked
    task = get_task(config.task)
    cache_dir, key, template = config.cache_path(), config.result_key(), task.template_for(config.prompts)
    generator = _generator_plan(config, cache_dir)
    scorer = _scorer_plan(config.scorer, effective, config.plugins, config.cache_dir)
    return RunPlan(
        config=config, task=task, key=key, results_dir=Path(config.output_dir) / f"{config.name}-{key}",
        generator=generator, scorer=scorer,
        bank=BankPlan(config.bank, generated_bank_path(config, cache_dir) if config.bank.generate else None,
                      cache_dir / "banks", config.generator.model, config.batch_size),
        loop=config.loop, template=template,
        schedule=SchedulePlan(config.schedule, config.batch_size, config.in_flight, config.score_batch,
                              config.score_wait),
        workload=workload_of(config, template),
        runner_key=(generator.key, scorer.key, _hash([config.bank.model_dump(), config.task])))


def _generator_plan(config: RunConfig, cache_dir: Path) -> GeneratorPlan:
    cfg = config.generator
    arguments = {**without_later_defaults(cfg.model_dump(exclude={"backend", "options", "cache", "price"})), **cfg.options}
    takes = "workload" in inspect.signature(registry.get_factory("generator", cfg.backend)).parameters
    identity = json.dumps([cfg.backend, cfg.model, {k: v for k, v in cfg.options.items() if k in IDENTITY_OPTIONS}])
    common = config.model_dump(include={"plugins", "cache_dir"})
    return GeneratorPlan(cfg.backend, cfg.model, arguments, takes,
                         cfg.cache if cfg.cache is not None else cfg.backend in REMOTE_BACKENDS, identity,
                         cfg.model_dump(include=set(SamplingOptions.model_fields)), cache_dir,
                         _hash({**common, "generator": cfg.model_dump()}))


def _scorer_plan(cfg: ScorerConfig, options: dict[str, Any], plugins: Sequence[str], cache_dir: str) -> ScorerPlan:
    return ScorerPlan(cfg.name, options, _hash({"plugins": list(plugins), "cache_dir": cache_dir, "scorer": cfg.model_dump()}))


def plan_scorer(cfg: ScorerConfig, plugins: Sequence[str] = (), cache_dir: str = "",
                where: str = "scorer.options") -> ScorerPlan:
    """A scorer's plan on its own (a rescore's judge, a baseline's scorer): its options checked, under
    ``where``, and filled in. ``plugins``: already imported; they and ``cache_dir`` are part of the key."""
    import mils.scorers  # noqa: F401  (registers the built-in scorers)

    return _scorer_plan(cfg, scorer_options(cfg.name, cfg.options, where), plugins, cache_dir)


def generated_bank_path(config: RunConfig, cache_dir: Path) -> Path:
    """Where the bank that ``config.bank.generate`` describes is cached: a hash of the recipe, the
    prompt and the generator settings, so the same recipe with the same LLM is generated once."""
    recipe = config.bank.generate
    prompt = AUDIO_BANK_PROMPT if recipe.modality == "audio" else BANK_PROMPT
    generator = without_later_defaults(config.generator.model_dump(exclude={"device", "dtype"}))
    payload = json.dumps({"recipe": recipe.model_dump(), "prompt": prompt, "plugins": config.plugins,
                          "generator": generator}, sort_keys=True)
    return cache_dir / "banks" / f"generated-{content_hash(payload, 16)}.txt"


def workload_of(config: RunConfig, template: PromptTemplate) -> Workload:
    """The longest prompt ``config``'s loop can build (its ``template`` with no candidates in it, plus
    ``keep`` candidates of at most ``max_words`` words; a task's own slots, e.g. the prompt being
    rewritten, count as one more line each) and how many prompts are in flight at once."""
    extras = sorted(set(re.findall(r"(?<!\{)\{(\w+)\}(?!\})", template.text)) - {"descriptions", "requested_number"})
    frame = template.render([], config.loop.requested, **dict.fromkeys(extras, ""))
    return Workload(frame, config.loop.keep + len(extras), config.loop.max_words, config.batch_size)
