"""MILS, the engine: the public names, importable as ``from mils import Optimiser, build_config``.

Each name loads its module on first use (PEP 562), so ``import mils`` (and every ``mils.errors``
import) stays light; torch and the models load only with the parts that need them. The rooms:
``engine/`` (the loop, its async schedule, prompts, parsing, sampling, seeds, cost), ``config/`` (a run's
settings, profiles, task specs), ``components/`` (a config planned once, building what the plan names, banks,
response cache), ``generators/`` and ``scorers/`` (the two roles' implementations), ``run/`` (running a
task over samples: the runner, image tasks, arithmetic, model cache), ``storage/`` (result files, the
results folder, the atomic writer); ``protocols`` (what a generator and a scorer are), ``media``
(reading samples) and ``errors`` sit at the top.
"""

from __future__ import annotations

import importlib

_WHERE = {
    # the optimisation
    "Optimiser": "mils.engine.loop", "LoopOptions": "mils.engine.loop", "run_async": "mils.engine.schedule",
    "SampleResult": "mils.engine.records", "StepRecord": "mils.engine.records",
    # what a component is, and how one is named
    "Sample": "mils.protocols", "Generator": "mils.protocols", "Scorer": "mils.protocols", "Reply": "mils.protocols",
    "register": "mils.registry", "create": "mils.registry", "import_plugins": "mils.registry",
    # a run's settings, and running them
    "RunConfig": "mils.config.run_config", "build_config": "mils.config.run_config", "load_config": "mils.config.run_config",
    "RunPlan": "mils.components.plan", "plan_run": "mils.components.plan", "TaskRunner": "mils.run.runner",
    # what a run leaves behind
    "ResultStore": "mils.storage.results", "RunFolder": "mils.storage.run_folder", "read_run_config": "mils.config.run_config",
    # errors a user can meet (one line each)
    "MilsError": "mils.errors", "InputError": "mils.errors", "MissingInputError": "mils.errors",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'mils' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
