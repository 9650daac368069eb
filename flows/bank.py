"""Initial-bank generation as its own flow (the paper's recipe: N captions per ImageNet class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from mils.bank import save_bank
from mils.config import RunConfig
from tasks.captioning import generate_bank_task


@flow(name="mils-bank")
def bank_flow(config: RunConfig, out: str, per_class: int = 50, classes: int | None = None) -> dict[str, Any]:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    names = list(IMAGENET_CLASSNAMES)[:classes] if classes else list(IMAGENET_CLASSNAMES)
    bank = generate_bank_task(config, names, per_class)
    path = save_bank(bank, Path(out))
    get_run_logger().info("wrote %d captions for %d classes to %s", len(bank), len(names), path)
    return {"path": str(path), "captions": len(bank), "classes": len(names)}
