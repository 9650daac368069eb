"""Invite links: how raters who are not on this machine join a judging batch.

``mils judge invite BATCH NAME...`` gives each rater a secret link; the page then knows the rater
from the link (answers are keyed by it, a rater cannot pose as another), and nothing in the batch
is served without a valid, unrevoked link. The CSV export needs a separate admin token. Everything
lives in ``BATCH/invites.json`` (mode 0600): re-read on every request, so a revocation takes effect
at once, without a restart.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Iterable

from human_eval.protocol import RATER_NAME
from mils.errors import InputError
from mils.files import write_atomic

FILE = "invites.json"


def _path(batch_dir: str | Path) -> Path:
    return Path(batch_dir) / FILE


def read(batch_dir: str | Path) -> dict:
    """``{"admin": token, "raters": {name: {"token": ..., "revoked": bool}}}`` (empty when none)."""
    path = _path(batch_dir)
    if not path.is_file():
        return {"admin": None, "raters": {}}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON ({err}): the batch serves nobody until it is restored "
                         "(from a backup; or move it away and invite the raters again: their old links then stop working)") from err
    if not (isinstance(data, dict) and isinstance(data.get("raters"), dict)
            and all(isinstance(e, dict) and isinstance(e.get("token"), str) for e in data["raters"].values())):
        raise InputError(f"{path} is not an invite file (admin, raters: {{name: {{token, revoked}}}}): the batch serves "
                         "nobody until it is restored")
    return data


def _write(batch_dir: str | Path, data: dict) -> None:
    write_atomic(_path(batch_dir), json.dumps(data, indent=2), private=True)  # the tokens are secrets


def invite(batch_dir: str | Path, names: Iterable[str]) -> dict[str, str]:
    """A token per rater (an active rater keeps theirs; a revoked one gets a new one)."""
    if not (Path(batch_dir) / "pairs.json").is_file():
        raise InputError(f"{batch_dir} is not a judging batch (no pairs.json)")
    names = [n.strip(" ") for n in names]  # " bob " and "bob" are one rater (a newline is still refused)
    data = read(batch_dir)
    data["admin"] = data.get("admin") or secrets.token_urlsafe(24)
    for name in names:
        if not RATER_NAME.fullmatch(name):
            raise InputError(f"rater name {name!r}: 1-64 letters, digits, spaces, . @ - _")
        entry = data["raters"].get(name)
        if entry is None or entry["revoked"]:
            data["raters"][name] = {"token": secrets.token_urlsafe(24), "revoked": False}
    _write(batch_dir, data)
    return {name: data["raters"][name]["token"] for name in names}


def revoke(batch_dir: str | Path, names: Iterable[str]) -> None:
    names = [n.strip(" ") for n in names]
    data = read(batch_dir)
    unknown = [n for n in names if n not in data["raters"]]
    if unknown:
        raise InputError(f"no invite for {', '.join(unknown)} in {batch_dir}")
    for name in names:
        data["raters"][name]["revoked"] = True
    _write(batch_dir, data)


def rater_of(batch_dir: str | Path, token: str | None) -> str | None:
    """The rater a valid, unrevoked token belongs to (None otherwise)."""
    if not token:
        return None
    for name, entry in read(batch_dir)["raters"].items():
        if not entry.get("revoked", True) and secrets.compare_digest(entry["token"].encode(), token.encode()):
            return name
    return None


def active(batch_dir: str | Path) -> bool:
    """Whether the batch is in invite mode (any invite was ever made)."""
    return bool(read(batch_dir)["raters"])
