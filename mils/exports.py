"""A room's public names, each loaded from its module on first use (PEP 562): ``import mils.config``
stays light (no torch, no models) and the rest of the house imports ``from mils.config import
RunConfig``, never a room's inner module (tests/test_architecture.py holds it to that)."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``, whose public names ``names`` lists by
    module (``{"mils.run.runner": "TaskRunner check_media"}``). A name is looked up in its module at
    every import, never kept here: a test that patches the module (``monkeypatch.setattr(
    "mils.run.model_cache.runner_for", ...)``) is seen by the next import."""
    where = {name: module for module, listed in names.items() for name in listed.split()}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
