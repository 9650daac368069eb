"""Retention of a scheduled pipeline's dated results folders: keep the newest few, and every
folder a regression involves."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from mils.errors import MilsError
from mils.storage import RunFolder

log = logging.getLogger(__name__)


def _ledgers(dated: Path) -> list[dict[str, Any]]:
    out = []
    for folder in (p for p in dated.iterdir() if p.is_dir()):
        try:
            out.append(RunFolder(folder).read_ledger("pipeline"))
        except (OSError, MilsError):
            out.append({"regression": True})  # unreadable: keep the folder, a person should look
    return out


def prune_dated(output_dir: Path, keep: int, current: Path) -> list[Path]:
    """Remove all but the newest ``keep`` dated folders of a scheduled pipeline; a folder a
    regression was flagged on, and the one it was compared against, are kept. Returns the removed."""
    dated = sorted(p for p in output_dir.iterdir() if p.is_dir() and p.name[:8].isdigit())
    protected = {current.resolve()}
    for folder in dated:
        for ledger in _ledgers(folder):
            if ledger.get("regression"):
                protected.add(folder.resolve())
                if ledger.get("previous_dir"):
                    protected.add(Path(ledger["previous_dir"]).resolve().parent)
    removable = [p for p in dated[: max(len(dated) - keep, 0)] if p.resolve() not in protected]
    for folder in removable:
        shutil.rmtree(folder)
        log.info("retention: removed %s", folder)
    return removable
