"""What a MILS task is (:class:`TaskSpec`) and the registry of tasks. Each built-in task is one module of
:mod:`mils.config.tasks`; a plugin adds one with :func:`register_task` (examples/visual_qa.py).

Prompts, profiles, the config and the CLI all read this registry; an unknown task name gets the
registry's did-you-mean error.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mils.engine.prompts import PromptTemplate, get_template
from mils.errors import InputError, MissingInputError
from mils.protocols import Sample
from mils.registry import get_factory, known, register


@dataclass(frozen=True)
class CommandInput:
    """An input of a task's command: a positional argument (``image``), or an option (``--answer``; ``many``:
    given again for each). ``many``: one or more; ``optional``: may be left out (an option always may)."""

    name: str
    help: str
    many: bool = False
    optional: bool = False
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The key its value has in the ``inputs`` a command's ``dataset`` gets (``--answer``: ``answer``)."""
        return self.name.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class TaskCommand:
    """The ``mils VERB INPUTS...`` that runs a task on inputs given on the command line, through the
    benchmark flow (a results folder, MLflow, resume). ``dataset(inputs, configured)`` turns the positional
    inputs (by ``dest``) into the run's dataset (``{"kind", "args"}``), or None to keep the config's dataset
    (whose kind is ``configured``); it raises an InputError for inputs it cannot run."""

    help: str
    inputs: tuple[CommandInput, ...]
    dataset: Callable[[Mapping[str, Any], str], dict[str, Any] | None]
    flags: dict[str, str] = field(default_factory=dict)  # its models' flags (TaskSpec.scorer_flags) -> help


@dataclass(frozen=True)
class TaskSpec:
    """A task's whole definition. A plugin adds one with :func:`register_task` (examples/visual_qa.py)."""

    name: str
    modality: str  # what a sample is: image, video, audio, text (a prompt) or image pair
    verb: str  # the CLI command that runs it (its own `command`, else `caption` or `run`)
    initial: str  # where the initial candidates come from
    offline_gap: str | None = None  # what the offline profile lacks (None: runs as is)
    scorer_flags: dict[str, str] = field(default_factory=dict)  # CLI flag -> scorer option
    # a task whose sample is a text to rewrite: the sample is its own (only) initial candidate and
    # fills this slot of the meta-prompt (no initial bank)
    sample_slot: str | None = None
    # a task's own meta-prompt ({descriptions}, {requested_number} and its slots), registered under its name
    prompt: str | None = None
    official: str | None = None  # the official MILS code's prompt (``prompts: official``), byte for byte
    official_file: str | None = None  # its file name in the MILS repository's prompts/ (``--prompts DIR``)
    slots: Callable[[Sample], dict[str, str]] | None = None  # meta-prompt slots a sample fills (its fields)
    candidates: Callable[[Sample], Sequence[str]] | None = None  # a sample's own initial candidates, beside the bank
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # its settings in each named profile
    defaults: dict[str, Any] = field(default_factory=dict)  # its settings in a profile it does not name
    bank: bool = True  # False: a sample's own candidates are all its initial candidates (no bank is read)
    images: bool = False  # its candidates become images (rendered, edited): each step's best is kept in images/
    command: TaskCommand | None = None  # its own `mils VERB` (None: reached by `mils run`, or `mils caption`)

    @property
    def template(self) -> PromptTemplate:
        return get_template(self.name)

    @property
    def uses_bank(self) -> bool:
        """False for a task whose samples bring all their initial candidates (text-to-image: itself)."""
        return self.bank and self.sample_slot is None

    def sample_slots(self, sample: Sample) -> dict[str, str]:
        own = {self.sample_slot: sample.media} if self.sample_slot else {}
        return {**own, **(self.slots(sample) if self.slots else {})}

    def own_candidates(self, sample: Sample) -> list[str]:
        own = [sample.media] if self.sample_slot else []
        return own + list(self.candidates(sample) if self.candidates else [])

    def prompt_text(self, prompts: str = "suite") -> str | None:
        """The text ``prompts`` gives this task: None for this suite's own template (``suite``), the
        official MILS prompt (``official``), or the official file read from a folder (a path)."""
        if prompts == "suite":
            return None
        if self.official is None or self.official_file is None:
            having = [n for n in task_names() if get_task(n).official is not None]
            raise InputError(f"no official prompt for task {self.name!r}; tasks with one: {', '.join(having)}")
        if prompts == "official":
            return self.official
        path = Path(prompts).expanduser() / self.official_file
        if not path.is_file():
            files = [get_task(n).official_file for n in task_names() if get_task(n).official_file]
            raise MissingInputError(f"prompt file for {self.name} not found: {path} (a --prompts folder holds files "
                                    f"named as in the MILS repository: {', '.join(files)})")
        return path.read_text(encoding="utf-8")

    def template_for(self, prompts: str = "suite") -> PromptTemplate:
        """The meta-prompt a run of this task uses (``prompts``: see :meth:`prompt_text`)."""
        text = self.prompt_text(prompts)
        return self.template if text is None else PromptTemplate(self.name, text, official=True)


def register_task(spec: TaskSpec) -> TaskSpec:
    """Make ``spec`` a task configs can name (``task: NAME``), with its own meta-prompt when it has one."""
    register("task", spec.name)(lambda: spec)
    if spec.prompt is not None:
        register("prompt", spec.name)(lambda: PromptTemplate(spec.name, spec.prompt))
    return spec


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name`` (an unknown name lists the known ones and the closest match)."""
    importlib.import_module("mils.config.tasks")  # the built-in tasks register on first use
    return get_factory("task", name)()


def task_names() -> list[str]:
    importlib.import_module("mils.config.tasks")
    return known("task")


def captioning_task(modality: str) -> TaskSpec:
    """The captioning task for a sample modality (image, video or audio)."""
    return get_task(f"{modality}_captioning")
