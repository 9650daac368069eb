"""Every `mils` command the README shows is one the CLI takes, and every config file it names exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    """The README's `mils ...` lines inside ```bash blocks, continuation lines joined, comments cut."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith(".venv/bin/mils "):
                commands.append(line.split(" #")[0].strip())
    return commands


COMMANDS = _readme_commands()


def test_the_readme_shows_commands():
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("command", COMMANDS)
def test_a_readme_command_parses_and_its_config_files_exist(command):
    argv = shlex.split(command)[1:]
    build_parser().parse_args(argv)  # argparse exits (SystemExit) on an unknown command or flag
    for arg in argv:
        if arg.startswith("configs/"):
            assert (ROOT / arg).is_file(), f"{command}: {arg} does not exist"
