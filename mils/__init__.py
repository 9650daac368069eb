"""MILS, the engine: the public names, importable as ``from mils import Optimiser, build_config``.

Each name loads its module on first use (PEP 562), so ``import mils`` (and every ``mils.errors``
import) stays light; torch and the models load only with the parts that need them. Where things
live: ``loop`` / ``async_loop`` (the optimisation, lockstep and async), ``config`` / ``profiles``
(a run's settings), ``protocols`` (what a generator and a scorer are), ``registry`` (components by
name, plugins), ``captioning`` (a config's components run over samples), ``results`` (one sample's
result files), ``run_folder`` (a results folder as a whole), ``generators/`` and ``scorers/``.
"""

from __future__ import annotations

import importlib

_WHERE = {
    # the optimisation
    "Optimiser": "mils.loop", "LoopOptions": "mils.loop", "run_async": "mils.async_loop",
    "SampleResult": "mils.records", "StepRecord": "mils.records",
    # what a component is, and how one is named
    "Sample": "mils.protocols", "Generator": "mils.protocols", "Scorer": "mils.protocols", "Reply": "mils.protocols",
    "register": "mils.registry", "create": "mils.registry", "import_plugins": "mils.registry",
    # a run's settings, and running them
    "RunConfig": "mils.config", "build_config": "mils.config", "load_config": "mils.config",
    "Captioner": "mils.captioning",
    # what a run leaves behind
    "ResultStore": "mils.results", "RunFolder": "mils.run_folder", "read_run_config": "mils.run_folder",
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
