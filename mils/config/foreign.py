"""Settings that are the user's to choose, never a folder's: where to connect, which credential to
send, where to log and write, which code to import. A results folder's ``config.json`` carries the
science of a run (task, data, loop, scorer, model ids) and may be rerun to check a claim; the rest
comes from the person who reruns it (issue 47: a shared config named ``backend: openai``, its own
``base_url`` and ``api_key_env: AWS_SECRET_ACCESS_KEY``, and the stand-in server there logged the key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mils.errors import InputError

# dotted paths into a raw config; a generator option is the user's when its name says connect or credential
# (``runner.address``: the executor's address as configs written before the rename spell it)
USER_SETTINGS = ("plugins", "tracking.uri", "executor.address", "runner.address", "output_dir", "cache_dir")
USER_GENERATOR_OPTIONS = ("base_url", "api_key_env", "server", "served_name")
ACCEPT = ("--trust-config (use them as written: you trust the folder's author), or --mine (rerun its science "
          "with your own settings: these left at your defaults and flags)")


def from_results_folder(path: str | Path) -> bool:
    """A config.json inside a results folder: written by whoever made that folder, maybe not you."""
    from mils.storage.run_folder import RunFolder

    path = Path(path)
    layout = RunFolder(path if path.is_dir() else path.parent)
    return path.name in (layout.config.name, layout.root.name) and any(
        p.exists() for p in (layout.samples, layout.record, layout.media, layout.mlflow))


def _get(raw: dict[str, Any], dotted: str) -> Any:
    value: Any = raw
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _defaults() -> dict[str, Any]:
    """What a config holds when nobody chose: a folder's config.json at these values chooses nothing."""
    from mils.config.run_config import RunConfig, TrackingConfig

    cache = RunConfig.model_fields["cache_dir"].default_factory()
    return {"tracking.uri": TrackingConfig().uri, "output_dir": RunConfig.model_fields["output_dir"].default,
            "cache_dir": cache}


def user_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """The user's settings a raw config sets to something other than their defaults (dotted name ->
    value), in a stable order."""
    found = {name: _get(raw, name) for name in USER_SETTINGS}
    options = _get(raw, "generator.options") or {}
    if isinstance(options, dict):
        found.update({f"generator.options.{k}": options[k] for k in USER_GENERATOR_OPTIONS if k in options})
    defaults = _defaults()
    return {k: v for k, v in found.items() if v not in (None, (), [], "") and v != defaults.get(k)}


def without_user_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with the user's settings taken out (the profile's defaults and the flags fill them)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for name in user_settings(raw):
        *parents, last = name.split(".")
        holder = out
        for key in parents:
            holder[key] = dict(holder[key])
            holder = holder[key]
        del holder[last]
    return out


def check_foreign(path: str | Path, raw: dict[str, Any], trust: bool, mine: bool) -> dict[str, Any]:
    """The raw config to run: as written when it is not a results folder's or ``trust``; without the
    user's settings with ``mine``; else one InputError naming each setting that came from elsewhere."""
    if trust or not from_results_folder(path):
        return raw
    found = user_settings(raw)
    if not found:
        return raw
    if mine:
        return without_user_settings(raw)
    named = ", ".join(f"{k}={_short(v)}" for k, v in found.items())
    raise InputError(f"{path} is a results folder's config (from elsewhere?) and chooses settings that are yours: "
                     f"{named}; nothing was connected, sent, logged or imported. Rerun with {ACCEPT}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
