"""`mils VERB INPUTS...` for every task whose spec has a command (``TaskSpec.command``): `mils t2i`, `mils
style`, a plugin's own (`mils --plugin examples.visual_qa vqa IMAGE QUESTION`). Each builds the task's config,
makes the inputs its dataset and runs it through the benchmark flow, as `mils run` does (a results folder,
MLflow, resume, report.html)."""

from __future__ import annotations

import argparse

from cli.common import add_run_options, make_config
from mils.config import CommandInput, TaskSpec, get_task, task_names


def add_model_flags(parser: argparse.ArgumentParser, spec: TaskSpec) -> None:
    """The flags that name a task's models (its command's ``flags``: ``reward_processor`` is --reward-processor)."""
    for dest, text in (spec.command.flags if spec.command else {}).items():
        parser.add_argument("--" + dest.replace("_", "-"), dest=dest, help=text)


def cmd_task(args: argparse.Namespace) -> int:
    from cli.run import run_and_report
    from evaluation.datasets import check_dataset
    from mils.config import DatasetConfig

    spec = get_task(args.task)
    config = make_config(args, task=spec.name)
    dataset = spec.command.dataset({i.dest: getattr(args, i.dest) for i in spec.command.inputs}, config.dataset.kind)
    if dataset is not None:  # the inputs given here, else the config's own dataset
        config = config.model_copy(update={"dataset": DatasetConfig(**dataset)})
        check_dataset(config.dataset, paths=True)
    return run_and_report(config.model_copy(update={"output_dir": args.out}) if args.out else config)


def _add_input(parser: argparse.ArgumentParser, given: CommandInput) -> None:
    if given.name.startswith("-"):  # an option: given again for each of many
        parser.add_argument(given.name, dest=given.dest, action="append" if given.many else "store",
                            metavar=given.metavar, help=given.help)
        return
    nargs = ("*" if given.optional else "+") if given.many else ("?" if given.optional else None)
    parser.add_argument(given.name, nargs=nargs, metavar=given.metavar, help=given.help)


def register(sub: argparse._SubParsersAction) -> None:
    for name in task_names():
        spec = get_task(name)
        if spec.command is None:
            continue
        verb = sub.add_parser(spec.verb, help=spec.command.help)
        for given in spec.command.inputs:
            _add_input(verb, given)
        add_model_flags(verb, spec)
        verb.add_argument("--out", help="the folder its results folder goes in (default: the config's output_dir)")
        add_run_options(verb)
        verb.set_defaults(func=cmd_task, task=spec.name)
