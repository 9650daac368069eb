"""Issue 47, item 1: a results folder from elsewhere may hold a link at any name a command writes.
Each command runs once on a clean copy to learn what it writes there; then, for every new path and
every folder above it, a fresh copy gets a link at that name (to a folder or file of the user's) and
the command runs again: it refuses with one line or writes a real file, and the link's target is
never touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli.main import main
from flows.benchmark import run_benchmark
from mils.config.run_config import load_config


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _victims(tmp: Path) -> tuple[Path, Path]:
    folder, file = tmp / "victim-folder", tmp / "victim-file"
    folder.mkdir(exist_ok=True)
    (folder / "sourced.sh").write_text("echo the user's own file\n")
    file.write_text("the user's file\n")
    return folder, file


def _untouched(folder: Path, file: Path) -> bool:
    return [p.name for p in folder.iterdir()] == ["sourced.sh"] and file.read_text() == "the user's file\n"


COMMANDS = {
    "rescore": lambda run, out: ["rescore", str(run), "--scorer", "fake_bow", "--plugins", "tests.fakes",
                                 "--metrics", "BLEU"],
    "compare": lambda run, out: ["compare", f"{run}:step0", str(run), "--metrics", "BLEU", "CIDEr",
                                 "--resamples", "50"],
    "export official": lambda run, out: ["export", "official", str(run), str(run / "official")],
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from tests.flows.conftest import TARGETS, WORDS  # noqa: F401  (the flow fixtures' data)

    tmp = tmp_path_factory.mktemp("finished")
    bank = tmp / "bank.txt"
    bank.write_text("\n".join(f"{a} {b}" for a in WORDS for b in WORDS if a != b))
    import yaml

    raw = {"profile": "offline", "name": "planted", "plugins": ["tests.fakes"],
           "generator": {"backend": "fake", "model": "fake"}, "scorer": {"name": "fake_bow"},
           "bank": {"path": str(bank), "builtin": None}, "loop": {"steps": 2, "keep": 4, "requested": 5, "seed": 5},
           "dataset": {"kind": "fake_text", "args": {"targets": TARGETS[:3]}}, "metrics": ["BLEU"], "batch_size": 3,
           "output_dir": str(tmp / "outputs"), "tracking": {"uri": f"sqlite:///{tmp}/mlruns.db", "experiment": "t"}}
    (tmp / "run.yaml").write_text(yaml.safe_dump(raw))
    return run_benchmark(load_config(tmp / "run.yaml")).results_dir


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_command_writes_through_a_link_planted_at_any_name_it_writes(command, finished_run, tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.chdir(tmp_path)  # MLflow's default store, if a command opens one, is made here
    clean = tmp_path / "clean"
    shutil.copytree(finished_run, clean)
    before = _tree(clean)
    assert main(COMMANDS[command](clean, tmp_path)) == 0
    written = sorted(_tree(clean) - before)
    assert written, f"{command} wrote nothing into the results folder: the probe would prove nothing"
    names = sorted({str(Path(*Path(p).parts[: i + 1])) for p in written for i in range(len(Path(p).parts))})
    for n, name in enumerate(names):
        copy = tmp_path / f"copy{n}"
        shutil.copytree(finished_run, copy)
        target = copy / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        folder, file = _victims(tmp_path)
        target.symlink_to(folder if (clean / name).is_dir() else file)
        code = main(COMMANDS[command](copy, tmp_path))
        out = capsys.readouterr()
        assert _untouched(folder, file), f"{command} wrote through a link planted at {name}"
        if code != 0:
            assert "not a real folder" in out.err or "not a regular file" in out.err, out.err[-500:]
        else:
            assert not target.is_symlink() or not (clean / name).is_dir(), name
