"""Files a rerun trusts are written whole or not at all."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def write_atomic(path: str | Path, text: str) -> Path:
    """``text`` at ``path``, whole or not at all: written to a temporary file beside it, flushed to
    disk, then renamed over it (a kill leaves the old file or none, never half of the new one)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def content_hash(data: str | bytes, length: int | None = 16) -> str:
    """The SHA-256 hex digest of ``data`` (text: its UTF-8 bytes), cut to ``length`` characters: the
    one helper behind every content key (result keys, cache files, batch and folder names)."""
    digest = hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
    return digest if length is None else digest[:length]
