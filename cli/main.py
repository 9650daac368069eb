"""``mils``: build the parser from the command groups and run the chosen command.

Expected failures (a :class:`mils.errors.MilsError`: bad input, a missing file or package) print
one ``mils: error: ...`` line and exit 2; anything else is a bug and shows its traceback. With
``-v`` every error shows its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

# before Prefect or MLflow is imported: Prefect's temporary server (a child process that inherits
# this) otherwise starts every run with a telemetry ERROR and a traceback; a user's own setting wins
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from cli import caption, data, evaluate, human, run, task_verbs  # noqa: E402
from mils.errors import MilsError  # noqa: E402
from mils.layout import check_layout  # noqa: E402
from mils.registry import import_plugins  # noqa: E402

GROUPS = (caption, task_verbs, run, data, evaluate, human)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mils", description="MILS: training-free multimodal test-time optimisation")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more; tracebacks for every error")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="import MODULE first (again "
                        "for each): its tasks, their verbs and its components, e.g. --plugin examples.visual_qa")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def parse(argv: Sequence[str] | None):
    """The arguments; an unknown flag is reported with the usage of the (sub)command it was given to,
    not with the list of every command. The plugins named by --plugin are imported first: a plugin's task
    brings its verb."""
    pre = argparse.ArgumentParser(prog="mils", add_help=False, allow_abbrev=False)
    pre.add_argument("--plugin", action="append", default=[], metavar="MODULE")
    try:
        import_plugins(pre.parse_known_args(argv)[0].plugin)
    except MilsError as err:
        pre.error(str(err))
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = parser
        while True:  # down to the deepest subcommand the arguments chose
            subs = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
            name = getattr(args, subs[0].dest, None) if subs else None
            if name not in (subs[0].choices if subs else {}):
                break
            command = subs[0].choices[name]
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # Prefect's temporary server gets 20 s to start by default: a loaded machine (a busy GPU box, a test
    # suite at load 8) needs more. The user's own setting wins.
    os.environ.setdefault(EPHEMERAL_STARTUP, str(EPHEMERAL_STARTUP_SECONDS))
    if not args.verbose:  # a user error is one line, printed below: Prefect's run loggers keep theirs short
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).addFilter(_no_traceback_for_user_errors)
            logging.getLogger(name).addFilter(_not_every_finished_state)
    try:
        check_layout()  # before anything imports a shadowed package half-way through
        return args.func(args)
    except MilsError as err:
        if args.verbose:
            raise
        print(f"mils: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        if args.verbose or "ephemeral Prefect API server" not in str(err):
            raise
        print(f"mils: error: Prefect's temporary server did not start within {os.environ[EPHEMERAL_STARTUP]} s (a "
              f"loaded machine?): set {EPHEMERAL_STARTUP} higher, or start a server (`prefect server start`) and "
              "set PREFECT_API_URL to it", file=sys.stderr)
        return 2


def _no_traceback_for_user_errors(record: logging.LogRecord) -> bool:
    """A flow or task that failed on a user error (MilsError) logs its message without the traceback."""
    if record.exc_info and isinstance(record.exc_info[1], MilsError):
        record.exc_info, record.exc_text = None, None
    return True


def _not_every_finished_state(record: logging.LogRecord) -> bool:
    """Prefect's "Finished in state Completed()" after every task (--verbose shows them)."""
    return not (record.levelno <= logging.INFO and str(record.msg).startswith("Finished in state Completed"))


EPHEMERAL_STARTUP, EPHEMERAL_STARTUP_SECONDS = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 120


if __name__ == "__main__":
    sys.exit(main())
