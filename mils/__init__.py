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

from mils.exports import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {  # the public names, by module
    "mils.engine.loop": "Optimiser LoopOptions",
    "mils.engine.schedule": "run_async",
    "mils.engine.records": "SampleResult StepRecord",
    "mils.protocols": "Sample Generator Scorer Reply",
    "mils.registry": "register create import_plugins",
    "mils.config.run_config": "RunConfig build_config load_config read_run_config",
    "mils.components.plan": "RunPlan plan_run",
    "mils.run.runner": "TaskRunner",
    "mils.storage.results": "ResultStore",
    "mils.storage.run_folder": "RunFolder",
    "mils.errors": "MilsError InputError MissingInputError",
})
