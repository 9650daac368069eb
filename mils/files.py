"""Files a rerun trusts are written whole or not at all."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, data: str | bytes, private: bool = False) -> Path:
    """``data`` at ``path``, whole or not at all, and never through a link planted in a folder from
    elsewhere: written to a fresh temporary file beside it (a random name created exclusively, so a
    planted ``*.tmp`` link is never followed), flushed to disk, then renamed over ``path`` (a rename
    replaces a link at ``path`` itself, not the file it points to). A kill leaves the old file or
    none, never half of the new one. ``private``: readable by the owner only (tokens)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        from mils.errors import InputError

        raise InputError(f"{path} is a folder: name a file to write (nothing was written)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if not private:  # mkstemp makes 0600; a plain file gets what the umask allows
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def written(path: str | Path, write, private: bool = False) -> Path:
    """What ``write(buffer)`` writes (a DataFrame's ``to_csv``, a figure's ``savefig``), put at
    ``path`` by :func:`write_atomic`."""
    buffer = io.BytesIO()
    write(buffer)
    return write_atomic(path, buffer.getvalue(), private)


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """A matplotlib figure at ``path`` (its format from the suffix) by :func:`write_atomic`, then closed."""
    import matplotlib.pyplot as plt

    try:
        return written(path, lambda buffer: fig.savefig(buffer, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)


def real_folder(path: str | Path, then: str) -> Path:
    """``path`` resolved, when it is a real folder or absent; a link or a file there is an InputError
    (ending with ``then``): a folder from elsewhere could point a subfolder anywhere on this machine
    (``upload -> /etc``)."""
    from mils.errors import InputError

    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise InputError(f"{path} is not a real folder (a link or a file); {then}")
    return path.resolve()


def own_folder(path: str | Path, base: str | Path | None = None,
               then: str = "move it away or pick another folder") -> Path:
    """``path`` as a real folder the suite may write into: made when absent (with its parents);
    every folder from below ``base`` (or just ``path`` itself) down to ``path`` that exists must be a
    real folder, never a link or a file (InputError naming it). Use it for every folder created or
    reused inside a folder the suite did not make: ``mkdir(exist_ok=True)`` accepts a planted link
    (``rescore-x -> ~/.bashrc.d``) and every later write would land where the link points."""
    import stat

    from mils.errors import InputError

    path = Path(path)
    below = Path(base) if base is not None else path.parent
    chain = [path, *[p for p in path.parents if p != below and below in p.parents]]
    for folder in reversed(chain):
        try:
            folder.mkdir()
        except FileExistsError:
            pass
        except FileNotFoundError:  # a parent above base is missing: made as asked
            folder.mkdir(parents=True, exist_ok=True)
        mode = os.lstat(folder).st_mode
        if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
            raise InputError(f"{folder} is not a real folder (a link or a file): nothing is written through it; {then}")
    return path


def plain_file_or_absent(path: str | Path, then: str = "move it away") -> Path:
    """``path`` when nothing is there or a regular file is (not a link, a folder or a pipe): for a
    file the suite opens by name inside a folder it did not make (SQLite follows links)."""
    import stat

    from mils.errors import InputError

    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} is not a regular file (a link, a folder or a device): it is not opened; {then}")
    return path


def read_json(path: str | Path, what: str) -> Any:
    """A JSON file's content; a missing or malformed file is named (as ``what``) in the error."""
    from mils.errors import InputError, MissingInputError

    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingInputError(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise InputError(f"{what} file {path} is not valid JSON: {err}") from err


def file_hash(path: str | Path, length: int = 16) -> str:
    """:func:`content_hash` of a file's bytes, read in blocks (a video can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def content_hash(data: str | bytes, length: int | None = 16) -> str:
    """The SHA-256 hex digest of ``data`` (text: its UTF-8 bytes), cut to ``length`` characters: the
    one helper behind every content key (result keys, cache files, batch and folder names)."""
    digest = hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
    return digest if length is None else digest[:length]
