"""`backend: openai` against a loopback endpoint: faults retried (or not), the response cache, the
API key kept out of every file a run writes."""

from __future__ import annotations

import logging

import pytest

from mils.components.response_cache import CachedGenerator, ResponseCache
from mils.engine.sampling import SamplingOptions
from mils.errors import ComponentError, InputError
from mils.generators.openai_api import OpenAIGenerator, strip_reasoning
from tests.openai_fake import FakeEndpoint


@pytest.fixture
def endpoint(request):
    server = FakeEndpoint(*getattr(request, "param", ()))
    yield server
    server.close()


def _generator(url, **kw) -> OpenAIGenerator:
    return OpenAIGenerator(url, "fake-llm", SamplingOptions(max_new_tokens=64), timeout=kw.pop("timeout", 1.0),
                           backoff=0.05, **kw)


def test_every_transient_fault_is_retried_and_the_reply_is_the_right_one(caplog):
    server = FakeEndpoint(["429", "500", "stall", "malformed", "cut"], stall_seconds=3.0)
    try:
        with caplog.at_level(logging.WARNING):
            reply = _generator(server.base_url, max_retries=5).generate(["0.5: red cat sofa"], [7])[0]
        assert reply == FakeEndpoint.reply(server.bodies[-1])["choices"][0]["message"]["content"]
        assert reply.usage.generated > 0 and not reply.cut
        warnings = [r.message for r in caplog.records if "retry" in r.message]
        assert len(warnings) == 5 and "429" in warnings[0] and "500" in warnings[1]
        assert "Timeout" in warnings[2] and "malformed" in warnings[3]
        assert "retry 1/5 in 1.0s" in warnings[0]  # Retry-After honoured
        assert server.requests == 6
    finally:
        server.close()


def test_a_client_error_fails_at_once_and_a_dead_endpoint_names_its_url():
    server = FakeEndpoint(["400"])
    try:
        with pytest.raises(ComponentError, match=r"refused a request \(HTTP 400\)"):
            _generator(server.base_url).generate(["p"], [0])
        assert server.requests == 1  # never retried
    finally:
        server.close()
    with pytest.raises(ComponentError, match=r"http://127.0.0.1:9/v1/chat/completions failed 3 times"):
        _generator("http://127.0.0.1:9/v1", max_retries=2).generate(["p"], [0])


def test_the_key_comes_from_the_named_environment_variable(monkeypatch):
    from mils.generators import openai_generator

    monkeypatch.delenv("MILS_NO_SUCH_KEY", raising=False)
    with pytest.raises(InputError, match="'MILS_NO_SUCH_KEY', which is not set"):
        openai_generator("m", "/tmp", base_url="http://127.0.0.1:9/v1", api_key_env="MILS_NO_SUCH_KEY")


def test_reasoning_is_removed_before_parsing_and_counted():
    assert strip_reasoning("<think>the cat, maybe</think>\n1. a cat", "think") == "1. a cat"
    assert strip_reasoning("<think>cut short by the token limit", "think") == ""
    assert strip_reasoning("1. <b>a</b> cat", None) == "1. <b>a</b> cat"


def test_a_cached_request_is_never_sent_twice_and_keys_differ_by_seed_and_sampling(endpoint, tmp_path):
    cache = ResponseCache(tmp_path)
    first = CachedGenerator(_generator(endpoint.base_url), cache, "openai|fake-llm", {"temperature": 0.5})
    replies = first.generate(["0.5: red cat", "0.4: blue boat"], [1, 2])
    again = CachedGenerator(_generator(endpoint.base_url), ResponseCache(tmp_path), "openai|fake-llm",
                            {"temperature": 0.5})
    assert again.generate(["0.5: red cat", "0.4: blue boat"], [1, 2]) == replies and endpoint.requests == 2
    assert all(r.usage.cached for r in again.generate(["0.5: red cat"], [1]))
    again.generate(["0.5: red cat"], [3])  # another seed: another request
    CachedGenerator(_generator(endpoint.base_url), cache, "openai|fake-llm", {"temperature": 0.8}).generate(
        ["0.5: red cat"], [1])
    assert endpoint.requests == 4
    (model, n, tokens, _, _), = cache.info()
    assert (model, n) == ("openai|fake-llm", 4) and tokens > 0
    assert cache.prune(model="openai|fake-llm") == 4 and cache.info() == []


def test_mils_cache_info_and_prune(endpoint, tmp_path, capsys):
    from cli.main import main

    CachedGenerator(_generator(endpoint.base_url), ResponseCache(tmp_path), "openai|fake-llm", {}).generate(
        ["0.5: red cat", "0.4: blue boat"], [1, 2])
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 replies" in out and "openai|fake-llm" in out
    assert main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 2  # nothing said: nothing pruned
    assert "say what to prune" in capsys.readouterr().err
    assert main(["cache", "prune", "--cache-dir", str(tmp_path), "--older-than", "1"]) == 0
    assert "removed 0" in capsys.readouterr().out
    assert main(["cache", "prune", "--cache-dir", str(tmp_path), "--all"]) == 0
    assert "removed 2" in capsys.readouterr().out
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "none")]) == 0
    assert "no response cache" in capsys.readouterr().out


def test_an_engine_on_loopback_gets_hundreds_of_requests_at_once_a_remote_host_eight():
    from mils.engine.sampling import SamplingOptions
    from mils.engine.schedule import in_flight_of
    from mils.generators.openai_api import OpenAIGenerator, default_concurrency

    assert default_concurrency("http://127.0.0.1:8000/v1") == default_concurrency("http://localhost:30000/v1") == 256
    assert default_concurrency("https://api.example.com/v1") == 8
    generator = OpenAIGenerator("http://127.0.0.1:9/v1", "m", SamplingOptions(), max_concurrency=32)
    assert in_flight_of(generator) == 32  # the async schedule keeps that many requests out
    generator.close()


def test_a_key_pasted_as_the_variable_name_or_echoed_by_the_endpoint_is_never_shown(caplog):
    from mils.config.run_config import build_config

    key = "sk-proj-abc123SECRET"
    with pytest.raises(InputError, match="not a variable name") as err:
        build_config("offline", {"generator": {"backend": "openai", "model": "m",
                                               "options": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": key}}})
    assert key not in str(err.value)

    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Echo(BaseHTTPRequestHandler):  # an endpoint whose error quotes the Authorization header
        def do_POST(self):  # noqa: N802 (the http.server API)
            self.rfile.read(int(self.headers["Content-Length"]))
            body = ('{"error": "invalid header ' + self.headers["Authorization"] + '"}').encode()
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        generator = OpenAIGenerator(f"http://127.0.0.1:{server.server_address[1]}/v1", "m",
                                    SamplingOptions(max_new_tokens=8), api_key=key)
        with pytest.raises(ComponentError, match=r"invalid header Bearer \*\*\*") as err:
            generator.generate(["p"], [0])
        assert key not in str(err.value)
        generator.close()
    finally:
        server.shutdown()
        server.server_close()


class Scripted:
    """A loopback endpoint answering each request with the next scripted (status, headers, body);
    a body may be a generator of chunks (sent without Content-Length, chunked)."""

    def __init__(self, script):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.script, self.requests = list(script), 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (the http.server API)
                self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests += 1
                status, headers, body = owner.script.pop(0) if owner.script else (200, {}, _ok("1. a red cat"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                try:
                    if isinstance(body, bytes):
                        if "Content-Length" not in headers:
                            self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                    else:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in body:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: as it should
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _ok(content, usage=None) -> bytes:
    import json

    return json.dumps({"choices": [{"message": {"content": content}, "finish_reason": "stop"}],
                       "usage": usage if usage is not None else {"prompt_tokens": 3, "completion_tokens": 4}}).encode()


def test_a_reply_body_larger_than_the_reply_can_be_is_not_read():
    """Issue 47, item 5: a 3 GB body took the process to 3.5 GB; the bound comes from max_new_tokens."""
    from mils.generators.openai_api import reply_limit

    limit = reply_limit(64)
    endless = (b"x" * 65536 for _ in range(10**6))  # 64 GB if read to the end
    server = Scripted([(200, {"Content-Length": str(3 * 2**30)}, b""), (200, {}, endless)])
    try:
        with pytest.raises(ComponentError, match="failed 2 times; last: a reply past") as err:
            _generator(server.url, max_retries=1, timeout=30.0).generate(["p"], [0])
        assert server.requests == 2 and f"{limit:,}" in str(err.value)
    finally:
        server.close()


@pytest.mark.parametrize("bad", [
    _ok(5), _ok("a", usage={"prompt_tokens": "many"}), _ok("a", usage=[1, 2]),
    b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    _ok([{"type": "image", "url": 3}, 7]),
])
def test_a_malformed_reply_is_retried_not_a_crash(bad, caplog):
    server = Scripted([(200, {}, bad)])
    try:
        reply = _generator(server.url, max_retries=2).generate(["p"], [0])[0]
        assert reply == "1. a red cat" and server.requests == 2
        assert any("malformed" in r.message for r in caplog.records)
    finally:
        server.close()


def test_content_given_as_text_parts_is_their_text_not_their_repr():
    server = Scripted([(200, {}, _ok([{"type": "text", "text": "1. a cat"}, {"type": "text", "text": "\n2. a dog"}]))])
    try:
        assert _generator(server.url).generate(["p"], [0])[0] == "1. a cat\n2. a dog"
    finally:
        server.close()


def test_a_retry_after_longer_than_the_timeout_fails_with_the_servers_value():
    server = Scripted([(429, {"Retry-After": "99999999"}, b"{}")])
    try:
        with pytest.raises(ComponentError, match="asked to wait 99999999 s"):
            _generator(server.url, timeout=5.0).generate(["p"], [0])
        assert server.requests == 1
    finally:
        server.close()


def test_the_key_is_masked_whole_cut_short_or_base64_encoded():
    import base64

    key = "sk-proj-abcdefghijklmnop0123456789"
    generator = OpenAIGenerator("http://127.0.0.1:9/v1", "m", SamplingOptions(max_new_tokens=8), api_key=key)
    for text in (f"bad key {key}", f"bad key {key[:20]}", f"auth {base64.b64encode(key.encode()).decode()}",
                 f"suffix {key[-9:]}"):
        shown = generator.masked(text)
        assert "***" in shown and key[:8] not in shown and key[-8:] not in shown
    assert generator.masked("nothing secret here: sk-") == "nothing secret here: sk-"  # short pieces stay


def test_reasoning_tags_are_literal_text_and_unclosed_blocks_end_the_reply():
    assert strip_reasoning("<th|nk>x</th|nk>1. a cat", "th|nk") == "1. a cat"
    assert strip_reasoning("1. a<think>b</think> cat<think>c</think>", "think") == "1. a cat"
    assert strip_reasoning("1. a cat" + "<think>" * 10_000, "think") == "1. a cat"


@pytest.mark.parametrize("bad,match", [({"max_concurrency": -5}, "max_concurrency"), ({"max_retries": -1}, "max_retries"),
                                       ({"timeout": float("inf")}, "timeout")])
def test_client_options_out_of_range_are_refused_at_once(bad, match):
    with pytest.raises(InputError, match=match):
        OpenAIGenerator("http://127.0.0.1:9/v1", "m", SamplingOptions(max_new_tokens=8), **bad)


def test_sampling_and_seed_ranges_are_checked():
    from pydantic import ValidationError

    from mils.engine.loop import LoopOptions

    with pytest.raises(ValidationError):
        SamplingOptions(temperature=float("inf"))
    with pytest.raises(ValidationError):
        LoopOptions(seed=2**80)


@pytest.mark.parametrize("url", ["http://user:hunter2@127.0.0.1:9/v1", "https://token@api.example.test/v1",
                                 "http://[::1/v1"])
def test_a_base_url_with_a_password_or_malformed_is_refused_before_anything_is_written(url):
    from mils.config.run_config import build_config

    with pytest.raises(InputError, match="base_url") as err:
        build_config("offline", {"generator": {"backend": "openai", "model": "m", "options": {"base_url": url}}})
    assert "hunter2" not in str(err.value) and "token@" not in str(err.value)
