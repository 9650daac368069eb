"""A loopback OpenAI-compatible chat endpoint for tests: scripted faults first, then replies
(numbered captions made of the prompt's words). Counts every request it answers."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeEndpoint:
    """``faults``: what the first requests get, one per request: ``429`` (with Retry-After: 1),
    ``500``, ``stall`` (no answer for ``stall_seconds``), ``malformed`` (a 200 that is not JSON),
    ``cut`` (the connection closed mid-body), ``400``."""

    def __init__(self, faults=(), stall_seconds: float = 3.0, key: str | None = None) -> None:
        self.faults, self.stall_seconds, self.key = list(faults), stall_seconds, key
        self.requests, self.bodies, self.lock = 0, [], threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (the http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint.lock:
                    endpoint.requests += 1
                    endpoint.bodies.append(body)
                    fault = endpoint.faults.pop(0) if endpoint.faults else None
                if endpoint.key and self.headers.get("Authorization") != f"Bearer {endpoint.key}":
                    return self._send(401, b'{"error": "bad key"}')
                if fault == "429":
                    return self._send(429, b'{"error": "slow down"}', {"Retry-After": "1"})
                if fault in ("500", "400"):
                    return self._send(int(fault), b'{"error": "scripted"}')
                if fault == "stall":
                    time.sleep(endpoint.stall_seconds)
                if fault == "malformed":
                    return self._send(200, b"<html>gateway</html>")
                payload = json.dumps(endpoint.reply(body)).encode()
                if fault == "cut":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.close_connection = True
                    return None
                return self._send(200, payload)

            def _send(self, status, payload, headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def reply(body: dict) -> dict:
        """Numbered captions from the words of the prompt's listed captions, shuffled by the seed."""
        prompt = body["messages"][-1]["content"]
        words = sorted(set(re.findall(r"[a-z]+", " ".join(re.findall(r"^[\d.\-]+: (.*)$", prompt, re.M)))))
        words = words or ["photo"]
        seed = int(body.get("seed", 0))
        lines = [" ".join(words[(seed + i + j) % len(words)] for j in range(3)) for i in range(5)]
        text = "\n".join(f"{n}. {line}" for n, line in enumerate(lines, 1))
        return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
