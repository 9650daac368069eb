"""Scheduled reruns' parts on their own: webhooks (a loopback receiver), bad input, retention."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from cli.main import main
from flows.notify import Webhook, read_notify, send
from flows.retention import prune_dated
from flows.schedule import checked_cron, ensure_pool
from mils.errors import InputError


class Receiver:
    """A loopback webhook receiver: records every JSON body; answers ``status`` (a list: one per call)."""

    def __init__(self, statuses=(200,)) -> None:
        self.bodies, self.statuses = [], list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                self.send_response(receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0])
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_a_message_reaches_slack_and_json_webhooks(receiver):
    hooks = (Webhook(receiver.url, "slack"), Webhook(receiver.url, "json"))
    message = {"event": "regression", "pipeline": "nightly",
               "metrics": {"CIDEr": {"delta": -0.2, "low": -0.3, "high": -0.1}}, "changed": {"git_revision": ["a", "b"]}}
    assert send(hooks, message, first_wait=0) == []
    slack, generic = receiver.bodies
    assert "nightly" in slack["text"] and "CIDEr: -0.2000 [-0.3000, -0.1000]" in slack["text"]
    assert "git_revision a -> b" in slack["text"]
    assert generic == message


def test_an_unreachable_webhook_is_retried_a_bounded_number_of_times_and_never_raises(caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    assert send((Webhook(dead + "?token=SECRET", "json"),), {"event": "failed"}, attempts=3, first_wait=0) == ["127.0.0.1"]
    assert sum("notification to 127.0.0.1 failed" in r.message for r in caplog.records) == 3
    assert not any("SECRET" in r.getMessage() or "/hook" in r.getMessage() for r in caplog.records)  # the host only


def test_a_receiver_that_trickles_or_answers_a_huge_body_cannot_hold_the_run():
    """One byte every 0.5 s (each read well inside any per-read timeout) and a body that never ends:
    each try ends at its total bound, and the body is never read."""
    import time

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server API)
            self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/trickle":
                for byte in b"HTTP/1.1 200 OK\r\n\r\n":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.5)
            else:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000000000\r\n\r\n")
                for _ in range(100_000):
                    self.wfile.write(b"x" * 65536)

        def log_message(self, *args):
            pass

    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        start = time.monotonic()
        assert send((Webhook(base + "/trickle", "json"),), {"event": "failed"}, attempts=2, first_wait=0,
                    try_seconds=1.0) == ["127.0.0.1"]
        assert time.monotonic() - start < 5  # two tries of 1 s, not the 10 s the trickle takes
        start = time.monotonic()
        assert send((Webhook(base + "/huge", "json"),), {"event": "failed"}, attempts=1, try_seconds=5.0) == []
        assert time.monotonic() - start < 4  # the status is enough: 5 GB are not read
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_error_is_retried_then_delivered():
    flaky = Receiver(statuses=(500, 503, 200))
    try:
        assert send((Webhook(flaky.url, "json"),), {"event": "failed"}, first_wait=0) == []
        assert len(flaky.bodies) == 3
    finally:
        flaky.close()


@pytest.mark.parametrize("entry, message", [
    ("not a url", r"notify\[0\]: a webhook URL cannot hold spaces"),
    ("http://x/y\r\nX-Injected: 1", r"notify\[0\]: a webhook URL cannot hold spaces or control characters"),
    ("notaurl", r"notify\[0\]: not an http\(s\) URL"),
    ({"url": "ftp://x/y"}, r"notify\[0\]: not an http\(s\) URL \(host 'x'\)"),
    ({"url": "http://x/y", "format": "teams"}, r"notify\[0\].format is slack or json"),
])
def test_a_notify_entry_that_is_not_a_webhook_is_one_line(entry, message):
    with pytest.raises(InputError, match=message):
        read_notify([entry])
    assert read_notify(["https://hooks.slack.com/services/x"])[0].format == "slack"


def test_a_cron_string_that_does_not_parse_and_an_unknown_pool_type_are_one_line(capsys, flow_config):
    with pytest.raises(InputError, match="is not a cron string"):
        checked_cron("every night")
    with pytest.raises(InputError, match="--pool-type is one of process, docker, kubernetes"):
        ensure_pool("gpus", "slurm")
    path, _ = flow_config("p.yaml")
    assert main(["schedule", str(path), "--cron", "61 3 * * *"]) == 2
    assert "is not a cron string" in capsys.readouterr().err
    assert main(["schedule", str(path), "--cron", "0 3 * * *", "--max-running", "-1"]) == 2


def test_a_pipeline_yaml_with_bad_notify_or_retention_fails_when_read(flow_config):
    from flows.pipeline import read_pipeline

    path, _ = flow_config("p.yaml", notify=["http://127.0.0.1:9/x"], retention=2)
    spec = read_pipeline(path)
    assert spec.notify == (Webhook("http://127.0.0.1:9/x", "json"),) and spec.retention == 2
    plain, _ = flow_config("q.yaml")
    assert read_pipeline(path).key() == read_pipeline(plain).key()  # alerts and retention change no result
    for bad, message in ((["nope"], "not an http"), ):
        broken, _ = flow_config("b.yaml", notify=bad)
        with pytest.raises(InputError, match=message):
            read_pipeline(broken)
    zero, _ = flow_config("z.yaml", retention=0)
    with pytest.raises(InputError, match="'retention' is how many dated results folders to keep"):
        read_pipeline(zero)


def test_retention_keeps_the_newest_and_every_folder_a_regression_involves(tmp_path):
    names = ["20260101-030000-aaaa", "20260102-030000-bbbb", "20260103-030000-cccc", "20260104-030000-dddd",
             "20260105-030000-eeee"]
    for name in names:
        (tmp_path / name / "fake-key").mkdir(parents=True)
        (tmp_path / name / "fake-key" / "pipeline.json").write_text(json.dumps({"regression": False}))
    flagged = tmp_path / names[2] / "fake-key" / "pipeline.json"  # the 3rd was a regression against the 2nd
    flagged.write_text(json.dumps({"regression": True, "previous_dir": str(tmp_path / names[1] / "fake-key")}))
    (tmp_path / "not-dated").mkdir()
    removed = prune_dated(tmp_path, keep=1, current=tmp_path / names[4])
    assert sorted(p.name for p in removed) == [names[0], names[3]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[1:3], names[4], "not-dated"])


def test_a_models_revision_changes_when_its_weights_do(tmp_path, monkeypatch):
    from flows.tracking import model_revision, model_revisions
    from mils.config.run_config import build_config

    weights = tmp_path / "scorer"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"1234")
    before = model_revision(str(weights))
    (weights / "model.safetensors").write_bytes(b"12345")
    assert before.startswith("files:") and model_revision(str(weights)) != before
    hub = tmp_path / "hub"
    (hub / "models--org--llm" / "refs").mkdir(parents=True)
    (hub / "models--org--llm" / "refs" / "main").write_text("0123abcd\n")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    assert model_revision("org/llm") == "0123abcd" and model_revision("org/other") == "not in the hub cache"
    config = build_config("offline", {"generator": {"model": "org/llm"}, "scorer": {"name": "clap",
                                                                                    "options": {"model": str(weights)}}})
    assert model_revisions(config) == {"model.generator": "0123abcd", "model.scorer.model": model_revision(str(weights))}
