"""One small name registry for every kind of pluggable component (scorers, generators, ...).

Components register a factory under ``(kind, name)``; users build them by name with options.
An unknown name raises an error listing the known names and the closest match.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Callable, Iterable, Sequence

from mils.errors import InputError, MilsError

_FACTORIES: dict[tuple[str, str], Callable[..., Any]] = {}
_EXTRA: dict[tuple[str, str], frozenset[str]] = {}  # what a factory's **kwargs takes, where it says
# options that are sizes or counts: 0 or less is a mistake, never "off"
_SIZES = ("size", "frames", "steps", "max_new_tokens", "max_seconds", "per_class")


class UnknownComponentError(MilsError, KeyError):
    """Raised when a component name is not registered for its kind."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def register(kind: str, name: str, extra: Iterable[str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``factory`` as the builder of component ``name`` of ``kind``.
    ``extra``: the names its ``**kwargs`` takes (default: a factory with ``**kwargs`` takes any)."""

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = (kind, name)
        if key in _FACTORIES and _FACTORIES[key] is not factory:
            raise InputError(f"{kind} {name!r} is already registered by {_FACTORIES[key]!r}")
        _FACTORIES[key] = factory
        if extra is not None:
            _EXTRA[key] = frozenset(extra)
        return factory

    return decorator


def known(kind: str) -> list[str]:
    """Sorted names registered for ``kind``."""
    return sorted(name for k, name in _FACTORIES if k == kind)


def get_factory(kind: str, name: str) -> Callable[..., Any]:
    try:
        return _FACTORIES[(kind, name)]
    except KeyError:
        names = known(kind)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownComponentError(
            f"unknown {kind} {name!r}; known {kind}s: {', '.join(names) or '(none)'}.{hint}"
        ) from None


def create(kind: str, name: str, **options: Any) -> Any:
    """Build component ``name`` of ``kind`` with ``options`` (the options are what gets logged)."""
    return get_factory(kind, name)(**options)


def _wrong_type(default: Any, value: Any) -> str | None:
    """What ``value`` should be, judged by the option's plain default (a number, a flag, a word),
    or None when it fits (or the default says nothing: None, a list, a model object)."""
    if value is None or default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string"
    return None


def checked_options(kind: str, name: str, options: dict[str, Any], where: str,
                    supplied: Iterable[str] = ()) -> dict[str, Any]:
    """The options component ``name`` would be built with, its factory's defaults filled in,
    checked without building it: an unknown name, an option the factory does not take, or a size
    of 0 or less is an InputError naming ``where`` (the config key). ``supplied``: parameters the
    caller passes itself (not the user's to set)."""
    factory = get_factory(kind, name)
    params = inspect.signature(factory).parameters
    named = {k: p for k, p in params.items()  # a leading underscore: the factory's own, not an option
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and not k.startswith("_")}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values()) and (kind, name) not in _EXTRA
    allowed = (set(named) | _EXTRA.get((kind, name), frozenset())) - set(supplied)
    for key, value in options.items():
        if key not in allowed and not takes_any:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(f"{where}.{key}: {kind} {name!r} takes no option {key!r}; it takes "
                             f"{', '.join(sorted(allowed)) or 'none'}{hint}")
        if key in named and (wrong := _wrong_type(named[key].default, value)):
            raise InputError(f"{where}.{key}: {value!r} is not {wrong} (the default is {named[key].default!r})")
        sized = isinstance(value, (int, float)) and not isinstance(value, bool)
        if sized and value <= 0 and (key.endswith("size") or key in _SIZES):
            raise InputError(f"{where}.{key}: {value} is not a size; it must be at least 1")
    missing = [k for k, p in named.items() if p.default is p.empty and k not in options and k not in set(supplied)]
    if missing:
        raise InputError(f"{where}: {kind} {name!r} needs {', '.join(missing)}")
    defaults = {k: p.default for k, p in named.items() if p.default is not p.empty and k not in set(supplied)}
    return {**defaults, **options}


def import_plugins(modules: Sequence[str]) -> None:
    """Import the modules a config names, so their components are registered."""
    from mils.errors import MissingDependencyError

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise MissingDependencyError(f"cannot import plugin module {module!r} (a config's plugins, or --plugin): {err}") from err


def validation_problem(error: dict, root) -> str:
    """A pydantic validation error of ``root`` (a model class) in words; an unknown key gets the
    closest known key of its section (before: "Extra inputs are not permitted")."""
    if error["type"] != "extra_forbidden":
        return error["msg"].removeprefix("Value error, ")
    model: Any = root
    for part in error["loc"][:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        model = getattr(field, "annotation", None)
    known = sorted(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
    return "not a setting here" + (f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})")
