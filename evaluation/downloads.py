"""`mils data get NAME --root DIR`: fetch what each benchmark loader needs, resumably, verified.

Each source lists its files with the publisher's URL and, where the publisher gives them, the
expected size and checksum. A download resumes from a ``.part`` file with an HTTP Range request,
is checked against the server's announced length, the listed size and checksum, and only then is
renamed into place (and unpacked when it is an archive). ``mirror`` replaces the host part of
every URL (a local copy, or the test suite's loopback server).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from mils.errors import InputError


@dataclass(frozen=True)
class RemoteFile:
    url: str
    size: int | None = None  # bytes, where the publisher lists it
    md5: str | None = None  # where the publisher lists it (Zenodo does)
    unpack: bool = False  # a .zip unpacked into the root; a .7z needs `7z` (told, not guessed)

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("?", 1)[0]


@dataclass(frozen=True)
class DataSource:
    name: str
    description: str
    files: tuple[RemoteFile, ...]
    config: str  # the YAML snippet that uses the files (``{root}`` is filled in)
    notes: tuple[str, ...] = field(default_factory=tuple)


SOURCES: dict[str, DataSource] = {
    "coco": DataSource(
        "coco",
        "COCO val2014 images, captions and instances (CHAIR), and the Karpathy test split (5,000 images)",
        (
            RemoteFile("https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip", unpack=True),
            RemoteFile("http://images.cocodataset.org/annotations/annotations_trainval2014.zip", unpack=True),
            RemoteFile("http://images.cocodataset.org/zips/val2014.zip", unpack=True),
        ),
        "dataset:\n  kind: coco_karpathy\n  args: {{json_path: {root}/dataset_coco.json, images_root: {root}}}\n"
        "# CHAIR: evaluation.chair with {root}/annotations/instances_val2014.json",
    ),
    "msrvtt": DataSource(
        "msrvtt",
        "MSR-VTT videos (the Frozen-in-Time package the MILS README uses)",
        (RemoteFile("https://www.robots.ox.ac.uk/~maxbain/frozen-in-time/data/MSRVTT.zip", unpack=True),),
        "dataset:\n  kind: msrvtt\n"
        "  args: {{test_videodatainfo_json: {root}/test_videodatainfo.json, video_dir: {root}/MSRVTT/videos/all}}",
        ("the annotations are MSR-VTT's test_videodatainfo.json (the file the official code reads, from the dataset's "
         "page https://cove.thecvf.com/datasets/839): put it in the root; the loader keeps its 2,990 split 'test' "
         "videos and refuses a file without per-video splits",),
    ),
    "clotho": DataSource(
        "clotho",
        "Clotho v2.1 evaluation split (1,045 clips, 5 captions each; Zenodo record 4783391)",
        (
            RemoteFile("https://zenodo.org/records/4783391/files/clotho_captions_evaluation.csv",
                       md5="1b16b9e57cf7bdb7f13a13802aeb57e2"),
            RemoteFile("https://zenodo.org/records/4783391/files/clotho_audio_evaluation.7z",
                       md5="4569624ccadf96223f19cb59fe4f849f", unpack=True),
        ),
        "dataset:\n  kind: clotho\n"
        "  args: {{captions_csv: {root}/clotho_captions_evaluation.csv, audio_dir: {root}/evaluation}}",
    ),
    "clotho-v1": DataSource(
        "clotho-v1",
        "Clotho v1 evaluation split (1,045 clips; Zenodo record 3490684): the version the MILS README downloads",
        (
            RemoteFile("https://zenodo.org/records/3490684/files/clotho_captions_evaluation.csv"),
            RemoteFile("https://zenodo.org/records/3490684/files/clotho_audio_evaluation.7z", unpack=True),
        ),
        "dataset:\n  kind: clotho\n"
        "  args: {{captions_csv: {root}/clotho_captions_evaluation.csv, audio_dir: {root}/evaluation}}",
        ("no checksum is recorded for v1 here (it was not reachable from the machine this was written on); "
         "v2.1's evaluation split has the same 1,045 clips, whether its captions differ from v1's is not checked",),
    ),
}
CLOTHO_VERSIONS = {"1": "clotho-v1", "2.1": "clotho"}  # `mils data get clotho --version`


class DownloadError(RuntimeError):
    """A file could not be fetched or failed verification (the partial file is kept for resume)."""


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _url(remote: RemoteFile, mirror: str | None) -> str:
    return f"{mirror.rstrip('/')}/{remote.name}" if mirror else remote.url


def fetch(remote: RemoteFile, root: Path, mirror: str | None = None, timeout: float = 60) -> Path:
    """Download one file into ``root`` (resuming a ``.part`` file), verify it, return its path."""
    target = root / remote.name
    if target.is_file():
        return target
    part = target.with_name(target.name + ".part")
    url = _url(remote, mirror)
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to fetch: the part file is whole
            response = None
        else:
            raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"{url}: {err}") from err
    if response is not None:
        with response:
            if have and response.status != 206:  # the server ignored the range: start over
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else remote.size
            with part.open("ab" if have else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=remote.name
            ) as bar:
                try:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                        bar.update(len(block))
                except (OSError, urllib.error.URLError) as err:
                    raise DownloadError(f"{url}: connection lost after {part.stat().st_size} bytes ({err}); "
                                        "run the same command again to resume") from err
        if total is not None and part.stat().st_size != total:
            raise DownloadError(f"{url}: got {part.stat().st_size} of {total} bytes; run again to resume")
    _verify(remote, part)
    os.replace(part, target)
    return target


def _verify(remote: RemoteFile, path: Path) -> None:
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise DownloadError(f"{remote.name}: {size} bytes, the publisher lists {remote.size}")
    if remote.md5 is not None:
        actual = _md5(path)
        if actual != remote.md5:
            path.unlink()  # a wrong checksum is not resumable: start over next time
            raise DownloadError(f"{remote.name}: md5 {actual}, the publisher lists {remote.md5}; deleted, "
                                "run again to download it anew")


def unpack(path: Path, root: Path) -> str | None:
    """Unpack an archive into ``root`` once (a marker records it); a message if it cannot be done here."""
    marker = root / f".{path.name}.unpacked"
    if marker.is_file():
        return None
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            archive.extractall(root)
    elif path.suffix == ".7z":
        tool = shutil.which("7z") or shutil.which("7za") or shutil.which("7zz")
        if tool is None:
            return f"{path.name} is a 7-Zip archive: install p7zip-full and run `7z x {path} -o{root}`"
        import subprocess

        subprocess.run([tool, "x", "-y", f"-o{root}", str(path)], check=True, stdout=subprocess.DEVNULL)
    marker.write_text("ok\n")
    return None


def get(name: str, root: str | Path, mirror: str | None = None) -> tuple[DataSource, list[str]]:
    """Fetch, verify and unpack every file of source ``name``; returns the source and any
    steps left to the user (e.g. a tool that is missing here)."""
    if name not in SOURCES:
        close = difflib.get_close_matches(name, list(SOURCES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InputError(f"unknown data source {name!r}; known: {', '.join(SOURCES)}.{hint}")
    source = SOURCES[name]
    folder = Path(root).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    todo = []
    for remote in source.files:
        path = fetch(remote, folder, mirror)
        if remote.unpack:
            message = unpack(path, folder)
            if message:
                todo.append(message)
    return source, todo


def config_snippet(source: DataSource, root: str | Path) -> str:
    return source.config.format(root=Path(root).expanduser().resolve())
