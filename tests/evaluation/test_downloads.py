"""`mils data get` against a loopback HTTP server the test starts (Range requests supported)."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evaluation import downloads
from evaluation.downloads import DataSource, DownloadError, RemoteFile, get


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut_once: set[str] = set()  # names whose first full response is cut off half-way
    requests: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802
        name = self.path.lstrip("/")
        self.requests.append((name, self.headers.get("Range")))
        if name not in self.files:
            self.send_error(404)
            return
        body = self.files[name]
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if name in self.cut_once and start == 0:
            self.cut_once.discard(name)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-file
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Files.files, _Files.cut_once, _Files.requests = {}, set(), []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Files
    httpd.shutdown()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def source(monkeypatch):
    csv = b"file_name,caption_1\na.wav,a dog barks\n" * 200
    archive = _zip({"evaluation/a.wav": b"RIFF" + bytes(5000)})
    fake = DataSource("fake", "a fake benchmark", (
        RemoteFile("https://example.org/files/captions.csv", size=len(csv), md5=hashlib.md5(csv).hexdigest()),
        RemoteFile("https://example.org/files/audio.zip", unpack=True),
    ), "dataset:\n  kind: clotho\n  args: {{captions_csv: {root}/captions.csv, audio_dir: {root}/evaluation}}")
    monkeypatch.setitem(downloads.SOURCES, "fake", fake)
    return fake, {"captions.csv": csv, "audio.zip": archive}


def test_download_resumes_after_a_dropped_connection_and_verifies(server, source, tmp_path):
    url, handler = server
    fake, files = source
    handler.files.update(files)
    handler.cut_once.add("captions.csv")
    with pytest.raises(DownloadError, match="run (the same command )?again to resume"):
        get("fake", tmp_path, mirror=url)
    part = tmp_path / "captions.csv.part"
    assert 0 < part.stat().st_size < len(files["captions.csv"])
    get("fake", tmp_path, mirror=url)  # resumes from the part file
    assert ("captions.csv", f"bytes={len(files['captions.csv']) // 2}-") in handler.requests
    assert (tmp_path / "captions.csv").read_bytes() == files["captions.csv"]
    assert (tmp_path / "evaluation" / "a.wav").is_file()  # the archive was unpacked
    requests = len(handler.requests)
    get("fake", tmp_path, mirror=url)  # all there: nothing fetched again
    assert len(handler.requests) == requests


def test_a_wrong_checksum_is_refused_and_the_file_removed(server, source, tmp_path):
    url, handler = server
    fake, files = source
    handler.files.update({**files, "captions.csv": b"X" * len(files["captions.csv"])})
    with pytest.raises(DownloadError, match="md5 .* the publisher lists"):
        get("fake", tmp_path, mirror=url)
    assert not (tmp_path / "captions.csv").exists() and not (tmp_path / "captions.csv.part").exists()


def test_missing_file_and_unknown_source_name_the_problem(server, source, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError, match="captions.csv: HTTP 404"):
        get("fake", tmp_path, mirror=url)
    with pytest.raises(ValueError, match="Did you mean 'coco'"):
        get("cocoo", tmp_path)


def test_cli_prints_the_config_snippet(server, source, tmp_path, capsys):
    from cli.main import main

    url, handler = server
    handler.files.update(source[1])
    assert main(["data", "get", "fake", "--root", str(tmp_path), "--mirror", url]) == 0
    out = capsys.readouterr().out
    assert f"captions_csv: {tmp_path.resolve()}/captions.csv" in out and "kind: clotho" in out
