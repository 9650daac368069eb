"""The house rules, checked by reading every module's imports (top level and inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {  # package -> top-level names it must never import
    "mils": {"flows", "tasks", "human_eval", "cli", "evaluation", "prefect", "prefect_dask", "mlflow"},
    "evaluation": {"flows", "tasks", "human_eval", "cli", "prefect", "mlflow"},
    "tasks": {"flows", "cli"},
    "flows": {"cli"},
    "human_eval": {"flows", "tasks", "cli", "prefect"},
}


def imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_upward(package):
    offences = {str(p.relative_to(ROOT)): sorted(imported_packages(p) & FORBIDDEN[package])
                for p in (ROOT / package).rglob("*.py")}
    assert {k: v for k, v in offences.items() if v} == {}


def test_the_checker_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from flows.pipeline import x\n    import mlflow.tracking\n")
    assert imported_packages(module) == {"flows", "mlflow"}
