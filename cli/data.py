"""`mils data get | list` (benchmark downloads), `mils bank` (an initial bank with the LLM), `mils memory` (a
caption memory from corpora) and `mils cache` (the LLM response cache)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from cli.common import add_run_options, make_config
from mils.errors import InputError


def cmd_data_get(args: argparse.Namespace) -> int:
    from evaluation.downloads import CLOTHO_VERSIONS, config_snippet, get

    name = args.name
    if args.version:
        if name != "clotho" or args.version not in CLOTHO_VERSIONS:
            raise InputError(f"--version is for clotho: {' or '.join(CLOTHO_VERSIONS)} (the MILS README uses 1)")
        name = CLOTHO_VERSIONS[args.version]
    elif name == "clotho":
        print("# Clotho v2.1 (the default here); the paper used v1 (the MILS README's Zenodo 3490684, and "
              "configs/paper/audio_captioning_clotho.yaml): add --version 1 for it")
    source, todo = get(name, args.root, mirror=args.mirror)
    for step in todo:
        print(f"still to do: {step}")
    print(f"{source.description}: in {Path(args.root).resolve()}. In a run config:\n")
    print(config_snippet(source, args.root))
    for note in source.notes:
        print(f"# {note}")
    return 1 if todo else 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from evaluation.downloads import SOURCES

    for source in SOURCES.values():
        print(f"{source.name:>8}: {source.description}")
        for remote in source.files:
            checks = ", ".join(c for c, v in (("size", remote.size), ("md5", remote.md5)) if v) or "server length"
            print(f"{'':>10}{remote.url}  (verified by {checks})")
    return 0


def cmd_bank(args: argparse.Namespace) -> int:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    from mils.components import (
        AUDIO_BANK_PROMPT,
        BANK_PROMPT,
        build_generator,
        generate_bank,
        plan_run,
        read_labels,
        save_bank,
    )

    if args.modality == "audio" and not args.labels:
        raise InputError("an audio bank needs --labels (AudioSet class_labels_indices.csv or one label per line)")
    config = make_config(args)
    names = read_labels(args.labels) if args.labels else list(IMAGENET_CLASSNAMES)
    classes = names[: args.classes] if args.classes else names
    generator = build_generator(plan_run(config).generator)
    prompt = AUDIO_BANK_PROMPT if args.modality == "audio" else BANK_PROMPT
    bank = generate_bank(generator, classes, args.per_class, seed=config.loop.seed, batch_size=config.batch_size,
                         generator_name=config.generator.model, prompt=prompt)
    path = save_bank(bank, args.out)
    print(f"wrote {len(bank)} captions for {len(classes)} classes to {path} (+ .provenance.json)")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    import sqlite3

    from mils.components import CACHE_FILE, ResponseCache

    folder = Path(args.cache_dir).expanduser()
    if not (folder / CACHE_FILE).is_file():
        print(f"no response cache in {folder} (a run writes {CACHE_FILE} there when its generator's cache is on)")
        return 0
    try:
        return _cache_command(args, ResponseCache(folder))
    except sqlite3.Error as err:
        raise InputError(f"{folder / CACHE_FILE} is not a response cache this suite can read ({err}): move it away; a run "
                         "writes a new one") from None


def _cache_command(args: argparse.Namespace, cache) -> int:
    import datetime

    if args.cache_command == "prune":
        if args.older_than is None and args.model is None and not args.all:
            raise InputError("say what to prune: --older-than DAYS, --model IDENTITY, or --all")
        if args.older_than is not None and not (math.isfinite(args.older_than) and args.older_than > 0):
            raise InputError(f"--older-than is a number of days above 0, not {args.older_than} (every cached reply is "
                             "money spent: --all removes them all)")
        removed = cache.prune(args.older_than, args.model)
        print(f"removed {removed} cached replies from {cache.path}")
        return 0
    rows = cache.info()
    size = cache.path.stat().st_size / 2**20
    print(f"{cache.path}: {sum(r[1] for r in rows)} replies, {size:.1f} MB")
    for model, n, tokens, oldest, newest in rows:
        day = lambda t: datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d")  # noqa: E731
        print(f"  {n:>8} replies  {tokens:>10} tokens  {day(oldest)} .. {day(newest)}  {model}")
    return 0


def cmd_memory(args: argparse.Namespace) -> int:
    from mils.components import build_memory, save_bank

    memory = build_memory(args.corpora, args.size, args.seed)
    path = save_bank(memory, args.out)
    print(f"{len(memory)} captions from {len(args.corpora)} corpus file(s) in {path} (and {path.name}.provenance.json)")
    print(f"a run retrieves from it with `bank: {{path: {path}}}`; the memory strategy: `loop: {{strategy: "
          "memory_concepts}` (it is embedded once, then cached like any bank)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="download benchmark data").add_subparsers(dest="data_command", required=True)
    data_get = data.add_parser("get", help="download, verify and unpack what a dataset loader needs (resumable)")
    data_get.add_argument("name", help="coco, msrvtt or clotho (`mils data list`)")
    data_get.add_argument("--root", required=True, help="folder to put the files in")
    data_get.add_argument("--mirror", help="fetch the same file names from this base URL instead")
    data_get.add_argument("--version", help="clotho: 2.1 (default) or 1 (Zenodo 3490684: the paper's, what the MILS "
                                            "README downloads and configs/paper/ expects)")
    data_get.set_defaults(func=cmd_data_get)
    data_list = data.add_parser("list", help="the known data sources and their files")
    data_list.set_defaults(func=cmd_data_list)

    bank = sub.add_parser("bank", help="generate an initial caption bank with the LLM (the paper's method, this suite's prompts)")
    bank.add_argument("--out", required=True, help="output text file")
    bank.add_argument("--per-class", type=int, default=10, help="captions per class (paper: 50 for audio)")
    bank.add_argument("--classes", type=int, help="only the first N classes (quick runs)")
    bank.add_argument("--modality", choices=["image", "audio"], default="image",
                      help="image: ImageNet classes; audio: the labels in --labels")
    bank.add_argument("--labels", help="class names: a text file, or AudioSet's class_labels_indices.csv")
    add_run_options(bank)
    bank.set_defaults(func=cmd_bank)

    memory = sub.add_parser("memory", help="a caption memory from caption corpora (CC3M .tsv, COCO .json, .txt, .csv)")
    memory.add_argument("corpora", nargs="+", help="corpus files: .txt (a caption per line), .tsv (CC3M: caption, url), "
                        ".csv (a caption column), .json (COCO captions, or a list)")
    memory.add_argument("--out", required=True, help="the memory's text file (a caption per line, as a bank)")
    memory.add_argument("--size", type=int, help="a random subset of this many captions")
    memory.add_argument("--seed", type=int, default=0, help="the subset's seed")
    memory.set_defaults(func=cmd_memory)

    cache = sub.add_parser("cache", help="the LLM response cache: what it holds, and pruning it").add_subparsers(
        dest="cache_command", required=True)
    for name, text in (("info", "replies and tokens per model"), ("prune", "delete cached replies")):
        verb = cache.add_parser(name, help=text)
        verb.add_argument("--cache-dir", default=os.environ.get("MILS_CACHE_DIR", "~/.cache/mils"),
                          help="the run config's cache_dir")
        if name == "prune":
            verb.add_argument("--older-than", type=float, metavar="DAYS", help="replies older than this")
            verb.add_argument("--model", help="one model identity (as `mils cache info` lists it)")
            verb.add_argument("--all", action="store_true", help="every reply")
        verb.set_defaults(func=cmd_cache)
