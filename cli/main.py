"""``mils``: build the parser from the command groups and run the chosen command.

Expected failures (a :class:`mils.errors.MilsError`: bad input, a missing file or package) print
one ``mils: error: ...`` line and exit 2; anything else is a bug and shows its traceback. With
``-v`` every error shows its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from cli import caption, data, evaluate, human, run
from mils.errors import MilsError
from mils.layout import check_layout

GROUPS = (caption, run, data, evaluate, human)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mils", description="MILS: training-free multimodal test-time optimisation")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more; tracebacks for every error")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        check_layout()  # before anything imports a shadowed package half-way through
        return args.func(args)
    except MilsError as err:
        if args.verbose:
            raise
        print(f"mils: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
