"""The `vllm` generator over vLLM's OpenAI-compatible server. Here against a stand-in server that
answers as vLLM does (the request fields, the reply and usage shapes); tests/vllm and
tests/flows/test_vllm_caption.py run the real one."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mils.engine.sampling import SamplingOptions
from mils.errors import ComponentError
from mils.generators.vllm_server import VLLMServerGenerator, server_flags
from mils.protocols import whole_lines


class _Handler(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        prompt = body["messages"][0]["content"]
        if prompt == "fail":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"engine dead")
            return
        cut = prompt == "long"
        text = f"1. a caption for {prompt} (seed {body['seed']})\n2. half a capt" if cut else f"1. about {prompt}"
        reply = {"choices": [{"message": {"role": "assistant", "content": text},
                              "finish_reason": "length" if cut else "stop"}],
                 "usage": {"prompt_tokens": len(prompt), "completion_tokens": body["max_tokens"] if cut else 4}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # http.server's default backlog of 5 resets concurrent connections (uvicorn's: 2048)


@pytest.fixture
def server():
    httpd = _Server(("127.0.0.1", 0), _Handler)
    _Handler.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_every_prompt_goes_at_once_with_its_seed_and_replies_come_back_in_order(server):
    generator = VLLMServerGenerator(server, SamplingOptions(temperature=0.5, top_p=0.9, max_new_tokens=64))
    prompts = [f"photo {i}" for i in range(20)]
    replies = generator.generate(prompts, [i + 2**31 for i in range(20)])
    assert replies == [f"1. about photo {i}" for i in range(20)]
    sent = sorted(_Handler.requests, key=lambda r: r["seed"])
    assert [r["seed"] for r in sent] == list(range(20))  # seeds reduced as in-process (mod 2**31)
    assert {(r["model"], r["temperature"], r["top_p"], r["max_tokens"]) for r in sent} == {("mils", 0.5, 0.9, 64)}
    assert [r.usage.prompt for r in replies] == [len(p) for p in prompts]
    assert "top_k" not in sent[0]
    VLLMServerGenerator(server, SamplingOptions(top_k=50)).generate(["x"], [1])
    assert _Handler.requests[-1]["top_k"] == 50


def test_a_reply_cut_off_by_the_limit_says_so_and_counts_its_tokens(server):
    generator = VLLMServerGenerator(server, SamplingOptions(max_new_tokens=30))
    replies = generator.generate(["long", "short"], [5, 6])
    assert [whole_lines(r) for r in replies] == ["1. a caption for long (seed 5)", "1. about short"]
    assert [r.cut for r in replies] == [True, False] and replies[0].startswith("1. a caption for long (seed 5)\n")
    assert [(r.usage.prompt, r.usage.generated) for r in replies] == [(4, 30), (5, 4)]


def test_a_failed_request_names_the_server(server):
    with pytest.raises(ComponentError, match=f"(?s){server}.*engine dead"):
        VLLMServerGenerator(server).generate(["fine", "fail"], [1, 2])


def test_engine_options_become_server_flags():
    assert server_flags({"enforce_eager": True, "max_num_batched_tokens": 16384, "dtype": "float32",
                         "enable_prefix_caching": False, "quantization": None}) == [
        "--enforce-eager", "--max-num-batched-tokens", "16384", "--dtype", "float32", "--no-enable-prefix-caching"]
