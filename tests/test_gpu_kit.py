"""The GPU kit end to end on a simulated bare GPU machine: a fresh virtual environment that sees
only what the lent GPU machine has (torch, transformers, timm, numpy, tokenizers, safetensors,
huggingface_hub, pillow, pandas and what they need; no pydantic, open_clip, prefect, mlflow),
the kit built here by ``gpu_prepare.sh --local``, then ``gpu_check.sh --tiny`` with no network:
exit 0, the self-check passed, every phase's rows in gpu_bench.json."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU_MACHINE = ["torch", "transformers", "timm", "numpy", "tokenizers", "safetensors", "huggingface_hub", "pillow",
               "pandas"]
ABSENT_THERE = {"pydantic", "pydantic-core", "annotated-types", "typing-inspection", "open-clip-torch", "ftfy",
                "wcwidth", "prefect", "mlflow", "gguf", "vllm", "mils-suite"}


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def gpu_machine_distributions() -> list[md.Distribution]:
    """The GPU machine's packages and their requirements (this environment's versions), less what
    that machine lacks (typer here asks for pydantic; the machine's transformers imports without it)."""
    from packaging.requirements import Requirement

    seen: dict[str, md.Distribution] = {}
    stack = list(GPU_MACHINE)
    while stack:
        name = stack.pop()
        if _key(name) in seen or _key(name) in ABSENT_THERE:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[_key(name)] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if not req.marker or req.marker.evaluate({"extra": ""}):
                stack.append(req.name)
    return list(seen.values())


def expose(dists: list[md.Distribution], folder: Path) -> None:
    """Links to each distribution's top-level modules and its metadata folder (transformers checks
    its dependencies' versions through the metadata)."""
    folder.mkdir()
    for dist in dists:
        site = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source, target = site / top, folder / top
            if source.exists() and not target.exists() and not top.endswith((".pth", "__pycache__")) \
                    and top != "bin":
                target.symlink_to(source)


def bare_machine(tmp: Path) -> Path:
    """A venv (with pip, for the kit's wheels) whose only packages are the GPU machine's."""
    env = tmp / "bare"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(env)
    python = env / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    expose(gpu_machine_distributions(), tmp / "exposed")
    (Path(site) / "gpu_machine.pth").write_text(str(tmp / "exposed") + "\n")
    return python


def offline(command: list) -> list:
    """The command in a network namespace of its own (no network at all), where this machine allows it."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n", *command]
    return command


@pytest.mark.slow
def test_the_gpu_kit_runs_end_to_end_on_a_simulated_bare_gpu_machine(tmp_path):
    python = bare_machine(tmp_path)
    lacks = subprocess.run([python, "-c", "import pydantic"], capture_output=True, text=True)
    assert lacks.returncode != 0, "the simulated machine must lack pydantic, as the GPU machine does"
    has = subprocess.run([python, "-c", "import torch, transformers, timm, pandas, PIL"], capture_output=True, text=True)
    assert has.returncode == 0, has.stderr[-2000:]

    kit, out = tmp_path / "kit", tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable}
    prepared = subprocess.run(["bash", "benchmarks/gpu_prepare.sh", "--local", "--kit", str(kit)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
    assert prepared.returncode == 0, prepared.stdout[-2000:] + prepared.stderr[-3000:]
    assert (kit / "tokenizer" / "tokenizer.json").is_file() and list((kit / "wheels").glob("pydantic-*.whl"))

    bare_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    bare_env.update(PYTHON=str(python), GPU_KIT=str(kit), PIP_NO_INDEX="1", GPU_CHECK_SECONDS="300")
    checked = subprocess.run(offline(["bash", "benchmarks/gpu_check.sh", str(out), "--tiny"]), cwd=ROOT, env=bare_env,
                             capture_output=True, text=True, timeout=900)
    assert checked.returncode == 0, (out / "setup.txt").read_text()[-3000:] + checked.stdout[-3000:] + checked.stderr[
        -3000:]
    assert json.loads((out / "selfcheck.json").read_text())["selfcheck"] == "pass"
    result = json.loads((out / "gpu_bench.json").read_text())
    phases = [r["phase"] for r in result["rows"]]
    assert phases == ["setup", *["decode"] * len(result["settings"]["batches"]), "padding", "loop", "loop"]
    assert result["rows"][0]["tokenizer"] == str(kit / "tokenizer")  # SmolLM2's, from the kit
    installed = re.search(r"carried wheels installed: \d+ into (\S+)", (out / "setup.txt").read_text())
    assert installed and not Path(installed.group(1)).exists()  # the check's own install removed when it ended


def test_the_test_suite_ends_cleanly_where_prefect_is_absent(tmp_path):
    """The GPU machine has no prefect: a test run there must not end in an error at teardown."""
    blocker = tmp_path / "blocked" / "prefect"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('prefect is not installed on this machine')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker.parent}{os.pathsep}{ROOT}"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/mils/generators/test_decode.py::test_decode_options_are_checked"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout and "error" not in run.stdout.lower()
