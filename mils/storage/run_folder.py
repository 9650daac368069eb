"""The results folder as a whole: its layout (every file name in one place), its lock (one writer
at a time), its config, and the media folder it may name (trusted only when sealed by this user).
What is inside ``samples/`` and ``failed/`` is mils/storage/results.py's (:class:`ResultStore`)."""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mils.errors import InputError
from mils.files import content_hash, read_json, write_atomic

MAX_RESULT_BYTES = 256 * 2**20
log = logging.getLogger(__name__)


def read_result_file(path: Path) -> Any:
    """A result file's JSON, or an InputError naming the file (corrupt, unreadable, a folder, a pipe
    that would block the reader forever, a file far larger than any result)."""
    if not path.is_file():
        raise InputError(f"{path} is not a regular file (a folder, a pipe, a device?)")
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise InputError(f"{path} is {path.stat().st_size:,} bytes: no result file is that large")
    import orjson  # not in every environment that imports the config (the vLLM one)

    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as err:  # only possible if someone edited the file by hand
        raise InputError(f"corrupt file {path}: {err} (a result file: delete it to recompute that sample)") from err
    except OSError as err:
        raise InputError(f"cannot read result file {path}: {err.strerror or err}") from err


class RunFolder:
    """A results folder's layout: every file name the suite reads or writes there, in one place.

    ``samples/<id>.json`` (one result per sample), ``failed/<id>.json`` (why a sample was dropped),
    ``images/<id>/stepNN.png`` (a task whose candidates become images: the best of every step),
    ``config.json`` (the run's config), ``run.json`` (its record: flows/record.py), ``media.json``
    (the sealed media folder), ``metrics/`` (the metric cache), ``mlflow.json`` (the MLflow ids a
    rerun reuses), ``sweep_runs.json`` (the sweep variants read off this folder), ``pipeline.json``
    (a pipeline's ledger), ``captioner.json`` and ``captions.json`` (a VLM baseline's), ``.lock`` (one
    writer at a time), ``.viewer_index.json`` (mils view)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    samples = property(lambda self: self.root / "samples")
    failed = property(lambda self: self.root / "failed")
    images = property(lambda self: self.root / "images")
    config = property(lambda self: self.root / "config.json")
    record = property(lambda self: self.root / "run.json")
    media = property(lambda self: self.root / "media.json")
    metrics = property(lambda self: self.root / "metrics")
    mlflow = property(lambda self: self.root / "mlflow.json")
    sweep_runs = property(lambda self: self.root / "sweep_runs.json")
    pipeline = property(lambda self: self.root / "pipeline.json")
    captioner = property(lambda self: self.root / "captioner.json")  # a VLM baseline's captioner and options
    captions = property(lambda self: self.root / "captions.json")  # a VLM baseline's captions, by sample id
    lock = property(lambda self: self.root / ".lock")
    viewer_index = property(lambda self: self.root / ".viewer_index.json")

    def step_images(self, sample_id: str) -> Path:
        """The folder of a sample's step images (named by a hash of its id, as its result file is)."""
        return self.images / content_hash(sample_id, 20)

    @staticmethod
    def step_image(step: int) -> str:
        return f"step{step:02d}.png"

    def read_ledger(self, name: str) -> dict[str, Any]:
        """A ledger's content (``mlflow``, ``sweep_runs``, ``pipeline``): {} while the folder has none. One
        that is not a JSON object is an InputError naming the file (the folder may not be yours)."""
        path = self._ledger(name)
        if not path.is_file():
            return {}
        data = read_json(path, f"the results folder's {name} ledger")
        if not isinstance(data, dict):
            raise InputError(f"the results folder's {name} ledger {path} is not a JSON object")
        return data

    def write_ledger(self, name: str, data: dict[str, Any]) -> None:
        """Replace a ledger (written atomically: a new file, never through a link that was there)."""
        write_atomic(self._ledger(name), json.dumps(data, indent=2))

    def _ledger(self, name: str) -> Path:
        if name not in LEDGERS:
            raise ValueError(f"no ledger {name!r}; a results folder has {', '.join(LEDGERS)}")
        return getattr(self, name)


LEDGERS = ("mlflow", "sweep_runs", "pipeline")  # the JSON a run's owners keep in its folder (RunFolder.read_ledger)


def write_media_root(results_dir: Path, samples: list) -> None:
    """``RESULTS/media.json``: the folder that holds every sample's media file (besides the results
    folder, the only place `mils view` and `mils human-eval export` take media from), sealed with
    this user's key (:func:`trusted_media_root`)."""
    files = [str(Path(s.media).resolve().parent) for s in samples if isinstance(s.media, Path)]
    if files:
        root = os.path.commonpath(files)
        key = _seal_key(create=True)
        if key is None:
            log.warning("no seal key could be written in %s (read-only or absent?): media.json is written unsealed, "
                        "so `mils view` and the judging export serve its media only with --media-root %s",
                        _key_file().parent, root)
        seal = _seal(key, results_dir, root) if key else ""
        write_atomic(RunFolder(results_dir).media, json.dumps({"media_root": root, "seal": seal}))


def trusted_media_root(results_dir: Path) -> tuple[Path | None, str | None]:
    """(the media folder ``media.json`` names, or None; why it is not trusted, or None). A folder
    from elsewhere must not widen what is served or copied (``{"media_root": "/"}``): the root is
    trusted when it lies inside the results folder or carries the seal this user's runs write (an
    HMAC of the folder and the root with a key in the user's config folder); any other is
    ignored with a reason (``--media-root`` trusts it by the user's say-so)."""
    try:
        raw = read_result_file(RunFolder(results_dir).media)
    except InputError:
        return None, None
    root = raw.get("media_root") if isinstance(raw, dict) else None
    if not isinstance(root, str):
        return None, None
    path = Path(root).expanduser().resolve()
    folder = results_dir.resolve()
    if path.is_relative_to(folder):
        return path, None
    key = _seal_key(create=False)  # checking never writes: a read-only config folder still reads results
    if key is not None and hmac.compare_digest(str(raw.get("seal", "")), _seal(key, results_dir, root)):
        return path, None
    why = "which no run of yours recorded for this folder (a folder from elsewhere?)" if key else (
        f"unsealed (no seal key in {_key_file().parent})")
    return None, f"media.json names {root}, {why}: its media are not served; pass --media-root {root} if you trust it"


KEY_BYTES = 32


def seal(folder: Path, text: str) -> str:
    """This user's seal of ``text`` for ``folder`` (an HMAC with the key in their config folder);
    empty where no key can be written. What a folder from elsewhere cannot forge."""
    key = _seal_key(create=True)
    return _seal(key, folder, text) if key else ""


def sealed(folder: Path, text: str, given: object) -> bool:
    """Whether ``given`` is this user's seal of ``text`` for ``folder`` (checking writes nothing)."""
    key = _seal_key(create=False)
    return bool(key and isinstance(given, str) and given and hmac.compare_digest(given, _seal(key, folder, text)))


def _key_file() -> Path:
    return Path(os.environ.get("MILS_CONFIG_DIR", "~/.config/mils")).expanduser() / "seal.key"


def _seal_key(create: bool) -> bytes | None:
    """This user's seal key; None where there is none (or a short one: an empty file a full disk left
    would make every seal forgeable). ``create``: make one (replacing a short one, atomically) where
    the config folder is writable; None where it is not."""
    key_file = _key_file()
    try:
        key = key_file.read_bytes() if key_file.is_file() else None
    except OSError:
        key = None
    if key is not None and len(key) >= KEY_BYTES:
        return key
    if not create:
        return None
    try:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        if key is not None:  # short: replaced whole (a rename), never rewritten in place
            write_atomic(key_file, secrets.token_bytes(KEY_BYTES), private=True)
        else:  # absent: a whole file linked in under the name, so two runs starting together share one key
            staged = write_atomic(key_file.with_name(f".seal.key.{secrets.token_hex(8)}"),
                                  secrets.token_bytes(KEY_BYTES), private=True)
            try:
                os.link(staged, key_file)
            except FileExistsError:  # another run made it first: theirs is used
                pass
            finally:
                staged.unlink(missing_ok=True)
        key = key_file.read_bytes()
    except OSError:
        return None
    return key if len(key) >= KEY_BYTES else None


def _seal(key: bytes, results_dir: Path, root: str) -> str:
    message = f"{results_dir.resolve()}\n{root}".encode()
    return hmac.new(key, message, "sha256").hexdigest()


def _open_lock(results_dir: Path, flags: int) -> int:
    """The lock file, never through a link; a folder, a link or a device there is one InputError."""
    import stat

    try:
        fd = os.open(RunFolder(results_dir).lock, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as err:
        raise InputError(f"{RunFolder(results_dir).lock} cannot be the run's lock file ({err.strerror}): remove it "
                         "and run again") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{RunFolder(results_dir).lock} is not a regular file: remove it and run again")
    return fd


def _refuse_locked(fd: int, results_dir: Path) -> None:
    raw = os.read(fd, 32).decode(errors="replace").strip()
    os.close(fd)
    holder = raw if raw.isdigit() else "?"  # whatever else the file holds is not echoed
    raise InputError(f"another run (pid {holder}) is writing {results_dir}: wait for it or stop it; this run "
                     "changed nothing")


def ensure_unlocked(results_dir: Path) -> None:
    """Refuse at once, before any flow starts, when another run holds the folder's lock (the flow
    checks again under the lock itself): one line instead of a failed flow's reports."""
    import fcntl

    if not RunFolder(results_dir).lock.exists() and not RunFolder(results_dir).lock.is_symlink():
        return
    fd = _open_lock(results_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        _refuse_locked(fd, results_dir)
    os.close(fd)


@contextmanager
def folder_lock(results_dir: Path) -> Iterator[None]:
    """One run writes a results folder at a time (``.lock``, an advisory lock the system releases when
    the process ends, however it ends): a second run of the same config is refused at once."""
    import fcntl

    results_dir.mkdir(parents=True, exist_ok=True)
    fd = _open_lock(results_dir, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _refuse_locked(fd, results_dir)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
