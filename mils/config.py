"""One frozen, validated configuration per run. Raw dicts stop at :func:`load_config`.

A config is a profile (named model choices) plus overrides; ``resolved()`` gives the exact
settings a run used, which is what gets logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mils.loop import LoopOptions


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GeneratorConfig(_Frozen):
    backend: Literal["transformers", "vllm"] = "transformers"
    model: str
    temperature: float = Field(0.5, gt=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_new_tokens: int = Field(1024, ge=1)
    device: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


class ScorerConfig(_Frozen):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class BankConfig(_Frozen):
    """Exactly one of ``path`` (a text file, one caption per line) or ``builtin``."""

    path: str | None = None
    builtin: Literal["imagenet-templates"] | None = None
    subsample: int | None = Field(None, ge=1)
    subsample_seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> "BankConfig":
        if (self.path is None) == (self.builtin is None):
            raise ValueError(
                "bank needs exactly one of 'path' (a caption file, e.g. the MILS release's "
                "image_descriptions_per_class.txt) or 'builtin' ('imagenet-templates')"
            )
        return self


class LoopConfig(_Frozen):
    steps: int = Field(10, ge=0)
    keep: int = Field(50, ge=1)
    requested: int = Field(50, ge=1)
    exploration: float = Field(0.0, ge=0, lt=1)
    patience: int | None = Field(None, ge=1)
    seed: int = 0
    max_words: int = Field(77, ge=1)

    def options(self) -> LoopOptions:
        return LoopOptions(**self.model_dump())


class RunConfig(_Frozen):
    profile: str
    task: str = "image_captioning"
    generator: GeneratorConfig
    scorer: ScorerConfig
    bank: BankConfig
    loop: LoopConfig = LoopConfig()
    batch_size: int = Field(8, ge=1)
    cache_dir: str = Field(default_factory=lambda: os.environ.get("MILS_CACHE_DIR", "~/.cache/mils"))

    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser()


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build_config(profile: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The named profile with ``overrides`` (nested dicts) applied, validated."""
    from mils.profiles import get_profile

    raw = _merge(get_profile(profile), overrides or {})
    raw["profile"] = profile
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ValueError(f"invalid run configuration (profile {profile!r}):\n{err}") from err


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """A YAML file with ``profile:`` and any overrides of it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict) or "profile" not in raw:
        raise ValueError(f"config {path} must be a mapping with a 'profile' key (offline or paper)")
    profile = raw.pop("profile")
    return build_config(profile, _merge(raw, overrides or {}))
