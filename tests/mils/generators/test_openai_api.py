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
