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


MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60
SOURCES = [p for package in ("mils", "evaluation", "tasks", "flows", "human_eval", "cli", "benchmarks")
           for p in (ROOT / package).rglob("*.py")]


def test_the_size_caps_cover_the_benchmarks_too():
    assert ROOT / "benchmarks" / "gpu_bench.py" in SOURCES


def test_no_file_or_function_is_too_long_to_read():
    too_long = []
    for path in SOURCES:
        source = path.read_text()
        if len(source.splitlines()) > MAX_FILE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert too_long == []


def test_a_package_that_shadows_a_top_level_name_is_named(tmp_path, monkeypatch):
    """Installing another `tasks` (a package-index name) ahead of ours: one line naming it."""
    import sys

    from mils.errors import MissingDependencyError
    from mils.layout import check_layout, foreign_packages

    assert foreign_packages() == {}  # this checkout: every top-level package is the suite's
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tasks", raising=False)
    with pytest.raises(MissingDependencyError, match=f"'tasks' is {tmp_path / 'tasks'}"):
        check_layout()


def test_the_public_api_resolves_and_importing_mils_loads_no_model_library():
    import subprocess
    import sys

    import mils

    assert all(getattr(mils, name) is not None for name in mils.__all__)
    light = subprocess.run([sys.executable, "-c", "import sys, mils, mils.errors; "
                            "print(sorted(m for m in ('torch', 'transformers', 'open_clip') if m in sys.modules))"],
                           capture_output=True, text=True, cwd=ROOT)
    assert light.stdout.strip() == "[]", light.stderr


# mils/ in rooms, each importing only the foundation (the top-level modules) and the rooms before it
ROOMS = ["engine", "generators", "scorers", "storage", "config", "components", "run"]
FOUNDATION = {"errors", "protocols", "registry", "files", "media", "layout", "exports"}


def imported_mils_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
        parts |= {m.split(".")[1] for m in modules if m.startswith("mils.")}
    return parts


def test_mils_rooms_import_only_the_foundation_and_earlier_rooms():
    assert {p.name for p in (ROOT / "mils").iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ROOMS)
    assert {p.stem for p in (ROOT / "mils").glob("*.py")} == FOUNDATION | {"__init__"}
    offences = []
    for index, room in enumerate(ROOMS):
        allowed = FOUNDATION | set(ROOMS[: index + 1])
        for path in (ROOT / "mils" / room).rglob("*.py"):
            offences += [f"{path.relative_to(ROOT)} imports mils.{part}" for part in imported_mils_parts(path) - allowed]
    for name in FOUNDATION:  # the foundation imports no room
        path = ROOT / "mils" / f"{name}.py"
        offences += [f"{path.relative_to(ROOT)} imports mils.{part}" for part in imported_mils_parts(path) & set(ROOMS)]
    assert offences == []


RESULTS_FILES = {"config.json", "run.json", "media.json", "mlflow.json", "sweep_runs.json", "pipeline.json", ".lock",
                 ".viewer_index.json", "captioner.json", "captions.json"}
MLFLOW_ARTIFACTS = {("flows/tracking.py", "config.json"), ("flows/report.py", "config.json"),
                    ("flows/pipeline.py", "pipeline.json")}  # names inside an MLflow run, not a results folder


HOUSE = ("mils", "flows", "tasks", "cli", "evaluation", "human_eval", "benchmarks", "examples")


def house_nodes(but: str) -> list[tuple[str, ast.AST]]:
    """(file, node) for every syntax node of the house's modules, the module ``but`` apart."""
    return [(where, node) for room in HOUSE for path in (ROOT / room).rglob("*.py")
            if (where := str(path.relative_to(ROOT))) != but for node in ast.walk(ast.parse(path.read_text()))]


def test_only_the_run_folder_spells_a_results_folder_file_name():
    """RunFolder (mils/storage/run_folder.py) owns every name in a results folder: a rename is one line."""
    offences = [f"{where}:{node.lineno} {node.value}" for where, node in house_nodes("mils/storage/run_folder.py")
                if isinstance(node, ast.Constant) and node.value in RESULTS_FILES
                and (where, node.value) not in MLFLOW_ARTIFACTS]
    assert offences == []


def test_only_the_plan_works_out_a_result_key_or_a_results_folder():
    """Issue 50, item 4: the result key and the results folder come from the plan (plan_run) alone;
    no flow, task or command hashes a config itself (four did: sweep, pipeline, notify, the CLI)."""
    offences = [f"{where}:{node.lineno}" for where, node in house_nodes("mils/components/plan.py")
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "result_key"]
    assert offences == []


def test_the_house_imports_mils_through_its_public_face():
    """Issue 50, item 5 (as httpx holds its modules private): outside mils/, a room's names come from the
    room (``from mils.config import RunConfig``, each name in the room's ``__all__``) or from ``mils``
    itself, never from a room's inner module; a module is imported whole only for its registrations."""
    import importlib

    offences = []
    for where, node in house_nodes(but=""):
        if not where.startswith("mils/") and isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "mils" or (len(parts) > 1 and parts[1] not in ROOMS):
                continue  # another package, or a foundation module (mils.errors, mils.files...)
            if len(parts) > 2:
                offences.append(f"{where}:{node.lineno} from {node.module} import (a room's inner module)")
                continue
            public = importlib.import_module(node.module).__all__
            offences += [f"{where}:{node.lineno} {node.module}.{a.name} (not in its __all__)" for a in node.names
                         if a.name not in public]
    assert offences == []


def test_the_tests_of_mils_mirror_its_rooms():
    """tests/mils/<room>/ holds a room's tests; the foundation's (files, media, registry) and those that
    cross rooms (the component contract, the paper's fidelity) sit in tests/mils/ itself."""
    folders = {p.name for p in (ROOT / "tests" / "mils").iterdir() if p.is_dir() and p.name not in ("__pycache__", "data")}
    assert folders == set(ROOMS)
