"""A simulated serving engine: an OpenAI-compatible chat endpoint on loopback whose throughput
follows an H100 running an 8B model, with time sped up so a COCO-sized run takes minutes here.

The curve (aggregate generated tokens/s at ``c`` requests decoding at once):
``peak * (1 - exp(-c * single / peak))``: ~``single`` tok/s for one request (decode ~7 ms a token
for an 8B model on one H100) and ~12,500 tok/s at 256 and more (published vLLM / SGLang offline
throughput for Llama-3.1-8B on one H100: 12-16K; the figures the engine issue gives). At most
``max_running`` requests decode at once (vLLM's ``max_num_seqs``, 256); later ones wait in a queue.
Prefill is a latency of ``prompt tokens / prefill_tps`` before a request joins (it does not take
decode capacity: a simplification). Every request decodes ``reply_tokens`` tokens (capped by its
``max_tokens``); its text is ``lines`` numbered captions drawn from its seed, so one request gets
the same reply whatever else is in flight. ``speedup``: engine seconds per wall second.

    python benchmarks/sim_engine.py --port 8011 --speedup 20       # serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import math
import random
import time
from dataclasses import dataclass, field

WORDS = ("a man woman dog cat red blue small large sitting standing on in near with of the table street field "
         "beach car bus train plate food tree grass water sky building room window boat bird horse").split()


@dataclass
class Curve:
    peak: float = 13300.0  # tok/s the engine approaches at high concurrency
    single: float = 140.0  # tok/s of one request alone
    max_running: int = 256
    prefill_tps: float = 40000.0

    def aggregate(self, running: int) -> float:
        return self.peak * (1 - math.exp(-running * self.single / self.peak)) if running else 0.0

    @property
    def capacity(self) -> float:
        """Generated tok/s with ``max_running`` requests decoding: the most the engine gives."""
        return self.aggregate(self.max_running)


@dataclass
class Engine:
    curve: Curve
    speedup: float
    reply_tokens: int = 750
    lines: int = 50
    progress: float = 0.0  # tokens every running request has received since the start (they share equally)
    heap: list = field(default_factory=list)
    waiting: list = field(default_factory=list)
    generated: float = 0.0
    trace: list = field(default_factory=list)  # (wall seconds, running, waiting)

    def __post_init__(self) -> None:
        self.start = time.monotonic()

    async def complete(self, body: dict) -> dict:
        prompt = body["messages"][-1]["content"]
        seed, tokens = int(body.get("seed", 0)), min(self.reply_tokens, int(body.get("max_tokens", self.reply_tokens)))
        prompt_tokens = len(prompt) // 4
        await asyncio.sleep(prompt_tokens / self.curve.prefill_tps / self.speedup)
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((tokens, done))
        self._admit()
        await done
        rng = random.Random(seed)
        text = "\n".join(f"{i}. " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14)))
                         for i in range(1, self.lines + 1))
        return {"choices": [{"message": {"role": "assistant", "content": text},
                             "finish_reason": "length" if tokens < self.reply_tokens else "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens}}

    def _admit(self) -> None:
        while self.waiting and len(self.heap) < self.curve.max_running:
            tokens, done = self.waiting.pop(0)
            heapq.heappush(self.heap, (self.progress + tokens, id(done), done))

    async def run(self, tick: float = 0.002) -> None:
        last = time.monotonic()
        sampled = last
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            running = len(self.heap)
            if running:
                each = self.curve.aggregate(running) / running * (now - last) * self.speedup
                self.progress += each
                self.generated += each * running
                while self.heap and self.heap[0][0] <= self.progress:
                    _, _, done = heapq.heappop(self.heap)
                    if not done.done():
                        done.set_result(None)
                self._admit()
            if now - sampled >= 0.05:
                self.trace.append((round(now - self.start, 3), len(self.heap), len(self.waiting)))
                sampled = now
            last = now

    def stats(self) -> dict:
        return {"generated": self.generated, "capacity": self.curve.capacity, "speedup": self.speedup,
                "trace": self.trace, "wall": time.monotonic() - self.start}


async def serve(engine: Engine, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                path = line.decode().split(" ")[1]
                headers = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    key, _, value = h.decode().partition(":")
                    headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                payload = await engine.complete(json.loads(body)) if path.endswith("/chat/completions") \
                    else engine.stats()
                data = json.dumps(payload).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(data)).encode() + b"\r\n\r\n" + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await asyncio.gather(server.serve_forever(), engine.run())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--speedup", type=float, default=20.0)
    p.add_argument("--reply-tokens", type=int, default=750)
    p.add_argument("--lines", type=int, default=50)
    p.add_argument("--max-running", type=int, default=256)
    a = p.parse_args(argv)
    engine = Engine(Curve(max_running=a.max_running), a.speedup, a.reply_tokens, a.lines)
    asyncio.run(serve(engine, a.port))


if __name__ == "__main__":
    main()
