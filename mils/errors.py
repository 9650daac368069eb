"""One exception family for the user; anything else is a bug and shows its traceback.

Each subclass also derives from the builtin type it replaces, so ``except ValueError`` in a
caller still works. The CLI prints ``mils: error: <message>`` for a :class:`MilsError` and lets
every other exception through with its traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MilsError(Exception):
    """An expected failure with a message that says what was given and what to do."""


class InputError(MilsError, ValueError):
    """A value, config, file content or reply that cannot be used (the message names it)."""


class MissingInputError(MilsError, FileNotFoundError):
    """A file or folder the run needs is not there."""


class MissingDependencyError(MilsError, ImportError):
    """An optional package a component needs is not installed."""


class ComponentError(MilsError, RuntimeError):
    """A component (model, tool, server) misbehaved in a way the user can act on."""


class StorageError(MilsError, OSError):
    """A result could not be written (a full disk, a read-only folder); what was written before is intact."""


def require(module: str, needed_by: str, install: str) -> ModuleType:
    """Import ``module`` or say which component needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(f"{needed_by} needs {module!r} ({err}): {install}") from err
