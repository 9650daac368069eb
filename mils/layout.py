"""The suite's top-level packages are named like common ones (``tasks``, ``flows``, ``evaluation``,
``human_eval``, ``cli`` exist on the package index or in other evaluation tools): a check that
each of them is this suite's, so that a shadowing install fails with one line naming it, not with
``No module named 'tasks.benchmark'`` half-way through a run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SUITE_PACKAGES = ("cli", "evaluation", "flows", "human_eval", "tasks")
ROOT = Path(__file__).resolve().parents[1]  # the folder holding mils/ and its sibling packages


def foreign_packages() -> dict[str, str]:
    """{package: where Python finds it} for each top-level package that is not this suite's."""
    foreign = {}
    for name in SUITE_PACKAGES:
        spec = importlib.util.find_spec(name)
        places = [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
        if not any(place == ROOT / name for place in places):
            foreign[name] = ", ".join(map(str, places)) or (spec.origin if spec else "nowhere")
    return foreign


def check_layout() -> None:
    """Raise a MissingDependencyError naming every top-level package another install shadows."""
    from mils.errors import MissingDependencyError

    foreign = foreign_packages()
    if foreign:
        found = "; ".join(f"'{name}' is {where}" for name, where in foreign.items())
        raise MissingDependencyError(
            f"another installed package takes this suite's top-level name: {found} (expected under {ROOT}). "
            "Install the suite in its own environment (`make setup` builds .venv), or uninstall that package")
