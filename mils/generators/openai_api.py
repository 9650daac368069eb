"""``backend: openai``: any OpenAI-compatible chat endpoint as the generator (a vLLM or SGLang
server, llama.cpp, Ollama, a hosted API).

Requests go out from one asyncio loop on a thread of their own (:class:`EventLoopThread`), at most
``max_concurrency`` at once: hundreds in flight cost no thread each. :meth:`OpenAIGenerator.submit`
sends one and returns a future (the ``async`` schedule's way in); ``generate`` sends a batch and
waits. A 429 halves the concurrency (it grows back by one per success) and waits what
``Retry-After`` says. A 5xx, a timeout, a dropped connection or a malformed body is retried with
exponential backoff, ``max_retries`` times; any other 4xx fails at once. The API key is read from
the environment variable the config names and is never stored (not in the config, the results,
MLflow or the logs; an error body that echoes it is shown with the key masked).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from concurrent.futures import Future
from typing import Any, Sequence

from mils.engine.sampling import SamplingOptions
from mils.errors import ComponentError, InputError
from mils.protocols import Reply, TokenUsage

log = logging.getLogger(__name__)


class _Retry(Exception):
    def __init__(self, why: str, wait: float | None = None) -> None:
        super().__init__(why)
        self.wait = wait


class EventLoopThread:
    """An asyncio loop running on a daemon thread; coroutines are handed to it from any thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def submit(self, coroutine) -> Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self, last=None) -> None:
        """Run ``last`` (a coroutine: closing a client), cancel what is still running, stop."""
        if last is not None:
            self.submit(last).result(timeout=30)
        self.submit(_cancel_others()).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


async def _cancel_others() -> None:
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.cancel()


class AdaptiveLimit:
    """At most ``limit`` requests in flight; halved on a 429, one more after each success. Used
    from the event loop only."""

    def __init__(self, maximum: int) -> None:
        self.maximum, self.limit, self.active = maximum, maximum, 0
        self.cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self.cond:
            await self.cond.wait_for(lambda: self.active < self.limit)
            self.active += 1

    async def __aexit__(self, *exc) -> None:
        async with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def throttled(self) -> None:
        self.limit = max(1, self.limit // 2)

    async def succeeded(self) -> None:
        if self.limit < self.maximum:
            async with self.cond:
                self.limit += 1
                self.cond.notify_all()


def strip_reasoning(text: str, tag: str | None) -> str:
    """The reply without its ``<tag>...</tag>`` blocks (a reasoning model's thinking); an unclosed
    block (the token limit cut the thinking) leaves nothing after its opening tag. One pass over the
    text (a regex over a long reply with many opening tags was quadratic); the tag is literal text."""
    if not tag:
        return text
    opening, closing = f"<{tag}>", f"</{tag}>"
    if opening not in text:
        return text
    kept, at = [], 0
    while True:
        start = text.find(opening, at)
        if start < 0:
            kept.append(text[at:])
            break
        kept.append(text[at:start])
        end = text.find(closing, start + len(opening))
        if end < 0:  # unclosed: nothing after it
            break
        at = end + len(closing)
    return "".join(kept).strip()


def reply_limit(max_new_tokens: int) -> int:
    """The most bytes a reply body may have: generous for ``max_new_tokens`` tokens (a token is at
    most ~16 characters, JSON may escape each to 6 bytes) plus the envelope; a gateway's 3 GB body
    is refused, not read."""
    return 2**20 + 128 * max_new_tokens


def reply_content(message: Any) -> str:
    """A chat reply's text: a string, or a list of text parts (``[{"type": "text", "text": ...}]``);
    anything else is malformed (ValueError: the request is retried)."""
    content = message.get("content") if isinstance(message, dict) else None
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text", ""), str) for p in content):
        return "".join(p.get("text", "") for p in content if p.get("type", "text") == "text")
    raise ValueError(f"content is a {type(content).__name__}, not text")


def _check_options(max_concurrency, max_retries, timeout, backoff) -> None:
    """Ranges a run would otherwise meet late: -5 requests at once waited forever, -1 retries was an
    AssertionError, an infinite timeout never fails."""
    import math

    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    problems = []
    if max_concurrency is not None and not (whole(max_concurrency) and max_concurrency >= 1):
        problems.append(f"max_concurrency must be a whole number >= 1, not {max_concurrency!r}")
    if not (whole(max_retries) and 0 <= max_retries <= 100):
        problems.append(f"max_retries must be a whole number from 0 to 100, not {max_retries!r}")
    for name, value in (("timeout", timeout), ("backoff", backoff)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            problems.append(f"{name} must be a finite number of seconds > 0, not {value!r}")
    if problems:
        raise InputError("generator.options." + "; ".join(problems))


def _count(usage: dict, key: str) -> int:
    value = usage.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2**40:
        raise ValueError(f"usage.{key} is {value!r}, not a token count")
    return int(value)


class OpenAIGenerator:
    concurrent = True

    def __init__(self, base_url: str, model: str, sampling: SamplingOptions, api_key: str | None = None,
                 system_prompt: str | None = None, max_concurrency: int | None = None, max_retries: int = 5,
                 timeout: float = 600.0, backoff: float = 1.0, reasoning_tag: str | None = "think") -> None:
        _check_options(max_concurrency=max_concurrency, max_retries=max_retries, timeout=timeout, backoff=backoff)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.sampling, self.system_prompt = model, sampling, system_prompt
        self.max_retries, self.backoff, self.reasoning_tag = max_retries, backoff, reasoning_tag
        self.maximum = max_concurrency or default_concurrency(base_url)
        self._key, self._timeout = api_key, timeout
        self._io: EventLoopThread | None = None
        self._started = threading.Lock()

    def _loop(self) -> EventLoopThread:
        with self._started:
            if self._io is None:
                io = EventLoopThread("mils-openai")
                self.limit, self.client = io.submit(self._open()).result()
                self._io = io
            return self._io

    async def _open(self):
        import aiohttp  # httpx's async pool costs ~4 ms of CPU a request at 256 in flight; aiohttp ~0.3 ms

        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=self._timeout, connect=30.0),
                                        connector=aiohttp.TCPConnector(limit=self.maximum))
        return AdaptiveLimit(self.maximum), session

    def messages(self, prompt: str) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": prompt}]

    def body(self, prompt: str, seed: int) -> dict[str, Any]:
        s = self.sampling
        return {"model": self.model, "messages": self.messages(prompt), "temperature": s.temperature, "top_p": s.top_p,
                "max_tokens": s.max_new_tokens, "seed": int(seed) % (2**31), **({"top_k": s.top_k} if s.top_k else {})}

    def masked(self, text: str) -> str:
        """``text`` (an error body, an exception) with the API key masked: some endpoints echo it,
        whole, cut by a length limit, or base64-encoded; any piece of 8 characters or more goes."""
        if not self._key:
            return text
        import base64

        for secret in (self._key, base64.b64encode(self._key.encode()).decode(),
                       base64.urlsafe_b64encode(self._key.encode()).decode()):
            for size in range(len(secret), 7, -1):
                for start in range(len(secret) - size + 1):
                    piece = secret[start: start + size]
                    if piece in text:
                        text = text.replace(piece, "***")
        return text

    def failed(self, why: str) -> ComponentError:
        """The error a request that cannot succeed raises (the vllm backend adds its server's log)."""
        return ComponentError(self.masked(why))

    async def _send(self, body: dict[str, Any]) -> Reply:
        import aiohttp

        try:
            async with self.limit, self.client.post(self.url, json=body) as response:
                status, after = response.status, response.headers.get("Retry-After", "")
                text = await self._body(response, reply_limit(int(body.get("max_tokens") or 0)))
        except (asyncio.TimeoutError, aiohttp.ClientError) as err:  # a stall, a refused or cut connection
            raise _Retry(f"{type(err).__name__}: {err}") from err
        if status == 429:
            self.limit.throttled()
            raise _Retry("HTTP 429 (rate limited)", self._retry_after(after))
        if status >= 500:
            raise _Retry(f"HTTP {status}: {self.masked(text)[:200]}")
        if status >= 400:
            raise self.failed(f"the endpoint {self.url} refused a request (HTTP {status}): {self.masked(text)[:300]}")
        try:
            reply = json.loads(text)
            choice, usage = reply["choices"][0], reply.get("usage") or {}
            result = self._reply(reply_content(choice["message"]), usage, choice.get("finish_reason") == "length")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as err:
            raise _Retry(f"a malformed reply ({type(err).__name__}): {self.masked(text)[:120]!r}") from err
        await self.limit.succeeded()
        return result

    async def _body(self, response, limit: int) -> str:
        """The body, read up to ``limit`` bytes: a larger Content-Length is refused unread, a body
        that runs past the limit stops being read (a retry, at most ``max_retries`` times)."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Retry(f"a reply of {int(declared):,} bytes (Content-Length), more than the {limit:,} that "
                         f"{self.sampling.max_new_tokens} new tokens can take: not read")
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                raise _Retry(f"a reply past {limit:,} bytes, more than {self.sampling.max_new_tokens} new tokens "
                             "can take: reading stopped")
            chunks.append(chunk)
        return b"".join(chunks).decode(response.charset or "utf-8", errors="replace")

    def _retry_after(self, value: str) -> float | None:
        """The wait a 429 asks for, at most the request timeout; a longer one fails with its value."""
        try:
            wait = float(value)
        except ValueError:
            return None
        if not wait >= 0:  # NaN, negative: ignored
            return None
        if wait > self._timeout:
            raise self.failed(f"the endpoint {self.url} asked to wait {value} s before retrying (Retry-After), longer "
                              f"than the {self._timeout:.0f} s timeout: try again later or raise generator.options.timeout")
        return wait

    def _reply(self, text: str, usage: dict, cut: bool) -> Reply:
        if not isinstance(usage, dict):
            raise ValueError("usage is not an object")
        details = usage.get("completion_tokens_details") or {}
        reasoning = _count(details, "reasoning_tokens") if isinstance(details, dict) and details.get(
            "reasoning_tokens") else 0
        if self.reasoning_tag and f"<{self.reasoning_tag}>" in text:
            visible = strip_reasoning(text, self.reasoning_tag)
            if not reasoning and usage.get("completion_tokens"):  # the share of the text that was thinking
                reasoning = round(int(usage["completion_tokens"]) * (1 - len(visible) / max(len(text), 1)))
            text = visible
        if not isinstance(usage, dict) or not isinstance(details, dict):
            raise ValueError("usage is not an object")
        tokens = TokenUsage(_count(usage, "prompt_tokens"), _count(usage, "completion_tokens"),
                            reasoning=reasoning) if usage else None
        return Reply(text, tokens, cut)

    async def _one(self, body: dict[str, Any]) -> Reply:
        wait = self.backoff
        for attempt in range(self.max_retries + 1):
            try:
                return await self._send(body)
            except _Retry as err:
                if attempt == self.max_retries:
                    raise self.failed(f"the endpoint {self.url} failed {self.max_retries + 1} times; last: {err}") from None
                pause = err.wait if err.wait is not None else wait
                log.warning("request to %s: %s; retry %d/%d in %.1fs", self.url, self.masked(str(err)), attempt + 1,
                            self.max_retries, pause)
                await asyncio.sleep(pause)
                wait *= 2
        raise AssertionError("unreachable")

    @property
    def max_in_flight(self) -> int:
        """What the async schedule keeps in flight (mils/engine/schedule.py)."""
        return self.maximum

    def submit(self, prompt: str, seed: int) -> Future:
        """Send one request and return at once: a future of its :class:`Reply`."""
        return self._loop().submit(self._one(self.body(prompt, seed)))

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[str]:
        futures = [self.submit(p, s) for p, s in zip(prompts, seeds)]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:  # one failed: the others are not waited for
                f.cancel()

    def close(self) -> None:
        with self._started:
            if self._io is not None:
                self._io.close(self.client.close())
                self._io = None


LOCAL_CONCURRENCY, REMOTE_CONCURRENCY = 256, 8


def default_concurrency(base_url: str) -> int:
    """Requests at once when the config gives none: 256 for an engine on this machine (a vLLM or
    SGLang server on loopback batches them; it is most efficient at 256 or more), 8 for any other
    host (a hosted API's rate limits; give ``max_concurrency`` for an engine on another machine)."""
    from urllib.parse import urlsplit

    host = (urlsplit(base_url).hostname or "").lower()
    return LOCAL_CONCURRENCY if host in ("localhost", "::1") or host.startswith("127.") else REMOTE_CONCURRENCY


def check_endpoint_options(options: dict) -> None:
    """An endpoint's options as a config gives them, checked before anything is written: the key's
    variable name, and a ``base_url`` without a user name or password (a password there would be
    stored in config.json, run.json, the response cache, MLflow and Prefect)."""
    from urllib.parse import urlsplit

    if options.get("api_key_env") is not None:
        check_key_env(options["api_key_env"])
    url = options.get("base_url")
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            credentials = parts.username is not None or parts.password is not None
        except ValueError:
            raise InputError("generator.options.base_url is not a valid URL (not shown: it may hold a secret)") from None
        if credentials:
            raise InputError("generator.options.base_url carries a user name or password: it would be stored in "
                             "config.json, run.json, the response cache, MLflow and Prefect. Give the URL without it "
                             "and the key in the variable generator.options.api_key_env names; nothing was written")


def check_key_env(value) -> None:
    """``api_key_env`` must name a variable (``OPENAI_API_KEY``): a key pasted there by mistake would
    land in config.json, MLflow and Prefect's stored parameters. The value is never shown."""
    if not (isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", value)):
        raise InputError("generator.options.api_key_env names an environment variable that holds the key (e.g. "
                         "OPENAI_API_KEY); this value is not a variable name (a key pasted there?). Nothing was "
                         "written; the value is not shown")


def api_key(env_var: str | None) -> str | None:
    """The key from the environment variable ``env_var`` names (None: no key, a local server)."""
    if env_var is None:
        return None
    check_key_env(env_var)
    if env_var not in os.environ:
        raise InputError(f"generator.options.api_key_env names {env_var!r}, which is not set in the environment")
    return os.environ[env_var]
