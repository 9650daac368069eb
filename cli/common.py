"""Helpers the command groups share: run options, config building, tables."""

from __future__ import annotations

import argparse
from typing import Any

from mils.errors import InputError


def loop_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    loop = {k: getattr(args, k) for k in ("steps", "keep", "requested", "exploration", "seed") if getattr(args, k) is not None}
    if loop:
        overrides["loop"] = loop
    if args.bank:
        overrides["bank"] = {"path": args.bank, "builtin": None}
    if args.bank_size:
        overrides.setdefault("bank", {})["subsample"] = args.bank_size
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    if args.cache_dir:
        overrides["cache_dir"] = args.cache_dir
    if getattr(args, "prompts", None):
        overrides["prompts"] = args.prompts
    generator = {k: getattr(args, flag) for k, flag in (("backend", "backend"), ("model", "llm")) if getattr(args, flag, None)}
    if getattr(args, "base_url", None):
        generator["options"] = {"base_url": args.base_url}
    if generator:
        overrides["generator"] = generator
    if getattr(args, "schedule", None):
        overrides["schedule"] = args.schedule
    return overrides


def make_config(args: argparse.Namespace, task: str | None = None):
    from evaluation.datasets import check_dataset
    from mils.config import build_config, get_task, load_config, offline_gap

    overrides = loop_overrides(args)
    if getattr(args, "plugin", None):  # `mils --plugin MODULE ...`: the run imports it wherever it runs
        overrides["plugins"] = list(args.plugin)
    if getattr(args, "tracking_uri", None):
        overrides["tracking"] = {"uri": args.tracking_uri}
    flags = get_task(task).scorer_flags if task else {}
    options = {opt: getattr(args, flag) for flag, opt in flags.items()
               if getattr(args, flag, None)}
    if options:
        overrides["scorer"] = {"options": options}
    if args.config:
        from mils.config import check_foreign

        trust, mine = getattr(args, "trust_config", False), getattr(args, "mine", False)
        config = load_config(args.config, overrides, vet=lambda raw: check_foreign(args.config, raw, trust, mine))
    else:
        gap = offline_gap(task) if args.profile == "offline" and task else None
        if gap and not options:
            raise InputError(f"the offline profile has no weights for {task}: it needs {gap}, or use --profile paper")
        config = build_config(args.profile, overrides, task=task)
    check_dataset(config.dataset, paths=True)
    return config


def add_trust_options(parser: argparse.ArgumentParser) -> None:
    """What a results folder's config.json may choose (mils/config/foreign.py): by default, nothing of yours."""
    parser.add_argument("--trust-config", action="store_true", help="a results folder's config.json: use its "
                        "endpoint, key variable, tracking store, plugins and folders as written")
    parser.add_argument("--mine", action="store_true", help="a results folder's config.json: rerun its science with "
                        "your own endpoint, key, tracking store, plugins and folders (defaults and flags)")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="offline", help="model profile: offline (default, no hub needed) or paper")
    parser.add_argument("--config", help="YAML run config (profile + overrides); flags below override it")
    add_trust_options(parser)
    parser.add_argument("--steps", type=int, help="optimisation steps")
    parser.add_argument("--keep", type=int, help="top-K candidates kept per step")
    parser.add_argument("--requested", type=int, help="new candidates requested per step")
    parser.add_argument("--exploration", type=float, help="fraction of kept slots sampled from below the top-K")
    parser.add_argument("--seed", type=int, help="run seed")
    parser.add_argument("--bank", help="initial caption bank: text file, one caption per line")
    parser.add_argument("--bank-size", type=int, help="random subset of the bank (ablations)")
    parser.add_argument("--batch-size", type=int, help="samples optimised together (one LLM call per step)")
    parser.add_argument("--cache-dir", help="where converted models and bank embeddings are cached")
    parser.add_argument("--prompts", help="meta-prompts: suite (offline default), official (the MILS files, paper "
                        "default) or a folder of prompt files named as in the MILS repository's prompts/")
    parser.add_argument("--backend", help="the LLM's engine: transformers (default), openai (an endpoint: --base-url) "
                        "or vllm (in this environment, else the server of `make vllm`'s .venv-vllm, started for the run)")
    parser.add_argument("--llm", help="the LLM: an HF id, a local directory, or (--backend openai) the endpoint's "
                        "model name")
    parser.add_argument("--base-url", help="--backend openai: the endpoint, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--schedule", choices=["lockstep", "async"], help="lockstep (default): a batch takes each step "
                        "together; async: each sample advances on its own (--backend vllm); same results")


def print_table(rows: list[tuple[str, str, float, str, float]]) -> None:
    from evaluation.tables import text_table

    print(text_table(("input", "initial-bank best", "score", "final caption", "score"), rows))


def read_json_arg(path: str, what: str):
    from mils.files import read_json

    return read_json(path, what)
