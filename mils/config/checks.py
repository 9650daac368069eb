"""Checks of what a config names that need the registries filled: its generator backend and scorer
exist and take the options it gives them (after importing the config's plugins)."""

from __future__ import annotations

from typing import Any

from mils.config.run_config import RunConfig
from mils.errors import InputError
from mils.registry import checked_options, import_plugins


def check_components(config: RunConfig) -> dict[str, Any]:
    """The generator backend and the scorer the config names exist (after importing its plugins)
    and take the options it gives them: checked when the config is built, before any model loads.
    Returns the scorer's effective options (its factory's defaults filled in)."""
    _register_components(config)
    gen = config.generator
    from mils.generators.openai_api import check_endpoint_options

    check_endpoint_options(gen.options)
    checked_options("generator", gen.backend, gen.options, "generator.options",
                    supplied=[*gen.model_dump(exclude={"backend", "options", "cache", "price"}), "cache_dir", "workload"])
    return scorer_options(config.scorer.name, config.scorer.options, "scorer.options")


def _register_components(config: RunConfig) -> None:
    import mils.generators  # noqa: F401  (register the built-in components)
    import mils.scorers  # noqa: F401

    import_plugins(config.plugins)


def scorer_options(name: str, options: dict[str, Any], where: str) -> dict[str, Any]:
    """The scorer's effective options (its factory's defaults filled in), checked; a scorer built
    on another (``video_frames``' ``image_scorer: {name, options}``) is checked too."""
    effective = checked_options("scorer", name, options, where)
    for key, value in options.items():
        if key.endswith("_scorer") and isinstance(value, dict):
            if not isinstance(value.get("name"), str):
                raise InputError(f"{where}.{key} needs a scorer name: {{name: ..., options: {{...}}}}")
            scorer_options(value["name"], value.get("options") or {}, f"{where}.{key}.options")
    return effective
