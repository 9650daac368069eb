"""Where a run's config goes: every call that receives a RunConfig (or a RunPlan) during one
benchmark run, counted by file, with the test suite's fake components (threads runner, no models).

    .venv/bin/python -m benchmarks.config_path [--samples 3] [--steps 2]

Prints one line per file (calls, and the functions called), then the totals. A reading aid for
the house (issue 38: how many places re-interpret a config), not a speed measurement.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _counter(kinds: tuple[type, ...]):
    calls: collections.Counter = collections.Counter()

    def profile(frame, event, _arg):
        where = frame.f_code.co_filename
        if event != "call" or not where.startswith(str(ROOT)) or where.startswith(str(ROOT / ".venv")):
            return  # the suite's own code only
        code = frame.f_code
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        for kind in kinds:
            if any(isinstance(frame.f_locals.get(n), kind) for n in names):
                calls[(kind.__name__, str(Path(code.co_filename).relative_to(ROOT)), code.co_name)] += 1

    return calls, profile


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", MLFLOW_DISABLE_TELEMETRY="true", HF_HUB_OFFLINE="1")
    from prefect.testing.utilities import prefect_test_harness

    from flows.benchmark import run_benchmark
    from mils.components import RunPlan
    from mils.config import RunConfig, build_config
    from tests.fakes import WORDS

    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        bank = Path(tmp) / "bank.txt"
        bank.write_text("\n".join(f"{a} {b}" for a in WORDS for b in WORDS if a != b))
        targets = ["red cat on sofa", "blue boat river", "man with hat", "dog grass ball"][: args.samples]
        config = build_config("offline", {
            "name": "path", "plugins": ["tests.fakes"], "generator": {"backend": "fake", "model": "fake"},
            "scorer": {"name": "fake_bow"}, "bank": {"path": str(bank), "builtin": None},
            "loop": {"steps": args.steps, "keep": 4, "requested": 5}, "metrics": ["BLEU"],
            "dataset": {"kind": "fake_text", "args": {"targets": targets}}, "output_dir": f"{tmp}/runs",
            "cache_dir": f"{tmp}/cache", "tracking": {"uri": f"sqlite:///{tmp}/mlruns.db", "experiment": "path"}})
        calls, profile = _counter((RunConfig, RunPlan))
        sys.setprofile(profile)
        threading.setprofile(profile)  # the threads runner's task threads too
        try:
            run_benchmark(config)
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    for kind in ("RunConfig", "RunPlan"):
        by_file: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for (k, path, function), n in calls.items():
            if k == kind:
                by_file[path][function] += n
        total = sum(sum(c.values()) for c in by_file.values())
        print(f"\n{kind}: {total} calls in {len(by_file)} files")
        for path, functions in sorted(by_file.items(), key=lambda item: -sum(item[1].values())):
            detail = ", ".join(f"{f} {n}" for f, n in functions.most_common())
            print(f"  {sum(functions.values()):3d}  {path}: {detail}")


if __name__ == "__main__":
    main()
