"""One small name registry for every kind of pluggable component (scorers, generators, ...).

Components register a factory under ``(kind, name)``; users build them by name with options.
An unknown name raises an error listing the known names and the closest match.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

from mils.errors import InputError, MilsError

_FACTORIES: dict[tuple[str, str], Callable[..., Any]] = {}


class UnknownComponentError(MilsError, KeyError):
    """Raised when a component name is not registered for its kind."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def register(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``factory`` as the builder of component ``name`` of ``kind``."""

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = (kind, name)
        if key in _FACTORIES and _FACTORIES[key] is not factory:
            raise InputError(f"{kind} {name!r} is already registered by {_FACTORIES[key]!r}")
        _FACTORIES[key] = factory
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
