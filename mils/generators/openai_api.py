"""``backend: openai``: any OpenAI-compatible chat endpoint as the generator (a vLLM or SGLang
server, llama.cpp, Ollama, a hosted API).

Requests go out concurrently, at most ``max_concurrency`` at once; a 429 halves the concurrency
(it grows back by one per success) and waits what ``Retry-After`` says. A 5xx, a timeout, a
dropped connection or a malformed body is retried with exponential backoff, ``max_retries``
times; any other 4xx fails at once. The API key is read from the environment variable the config
names and is never stored (not in the config, the results, MLflow or the logs).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from mils.errors import ComponentError, InputError
from mils.protocols import Reply, TokenUsage
from mils.sampling import SamplingOptions

log = logging.getLogger(__name__)


class _Retry(Exception):
    def __init__(self, why: str, wait: float | None = None) -> None:
        super().__init__(why)
        self.wait = wait


class AdaptiveLimit:
    """At most ``limit`` requests in flight; halved on a 429, one more after each success."""

    def __init__(self, maximum: int) -> None:
        self.maximum, self.limit, self.active = maximum, maximum, 0
        self.cond = threading.Condition()

    def __enter__(self) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.active < self.limit)
            self.active += 1

    def __exit__(self, *exc) -> None:
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def throttled(self) -> None:
        with self.cond:
            self.limit = max(1, self.limit // 2)

    def succeeded(self) -> None:
        with self.cond:
            self.limit = min(self.maximum, self.limit + 1)
            self.cond.notify_all()


def strip_reasoning(text: str, tag: str | None) -> str:
    """The reply without its ``<tag>...</tag>`` blocks (a reasoning model's thinking); an unclosed
    block (the token limit cut the thinking) leaves nothing after its opening tag."""
    if not tag:
        return text
    text = re.sub(rf"<{tag}>.*?</{tag}>", "", text, flags=re.S)
    return text.split(f"<{tag}>")[0].strip() if f"<{tag}>" in text else text.strip()


class OpenAIGenerator:
    concurrent = True

    def __init__(self, base_url: str, model: str, sampling: SamplingOptions, api_key: str | None = None,
                 system_prompt: str | None = None, max_concurrency: int | None = None, max_retries: int = 5,
                 timeout: float = 600.0, backoff: float = 1.0, reasoning_tag: str | None = "think") -> None:
        import httpx

        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.sampling, self.system_prompt = model, sampling, system_prompt
        self.max_retries, self.backoff, self.reasoning_tag = max_retries, backoff, reasoning_tag
        max_concurrency = max_concurrency or default_concurrency(base_url)
        self.limit = AdaptiveLimit(max_concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=httpx.Timeout(timeout, connect=30.0), headers=headers,
                                   limits=httpx.Limits(max_connections=max_concurrency))

    def messages(self, prompt: str) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": prompt}]

    def body(self, prompt: str, seed: int) -> dict[str, Any]:
        s = self.sampling
        return {"model": self.model, "messages": self.messages(prompt), "temperature": s.temperature, "top_p": s.top_p,
                "max_tokens": s.max_new_tokens, "seed": int(seed) % (2**31), **({"top_k": s.top_k} if s.top_k else {})}

    def _send(self, body: dict[str, Any]) -> Reply:
        import httpx

        try:
            with self.limit:
                response = self.client.post(self.url, json=body)
        except (httpx.TimeoutException, httpx.TransportError) as err:  # a stall, a refused or cut connection
            raise _Retry(f"{type(err).__name__}: {err}") from err
        if response.status_code == 429:
            self.limit.throttled()
            after = response.headers.get("Retry-After", "")
            raise _Retry("HTTP 429 (rate limited)", float(after) if after.replace(".", "", 1).isdigit() else None)
        if response.status_code >= 500:
            raise _Retry(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise ComponentError(f"the endpoint {self.url} refused a request (HTTP {response.status_code}): "
                                 f"{response.text[:300]}")
        try:
            reply = response.json()
            choice, usage = reply["choices"][0], reply.get("usage") or {}
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise _Retry(f"a malformed reply ({type(err).__name__}): {response.text[:120]!r}") from err
        self.limit.succeeded()
        details = usage.get("completion_tokens_details") or {}
        reasoning = int(details.get("reasoning_tokens") or 0)
        if self.reasoning_tag and f"<{self.reasoning_tag}>" in text:
            visible = strip_reasoning(text, self.reasoning_tag)
            if not reasoning and usage.get("completion_tokens"):  # the share of the text that was thinking
                reasoning = round(int(usage["completion_tokens"]) * (1 - len(visible) / max(len(text), 1)))
            text = visible
        tokens = TokenUsage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                            reasoning=reasoning) if usage else None
        return Reply(text, tokens, choice.get("finish_reason") == "length")

    def _one(self, prompt: str, seed: int) -> Reply:
        body, wait = self.body(prompt, seed), self.backoff
        for attempt in range(self.max_retries + 1):
            try:
                return self._send(body)
            except _Retry as err:
                if attempt == self.max_retries:
                    raise ComponentError(f"the endpoint {self.url} failed {self.max_retries + 1} times; last: {err}") from None
                pause = err.wait if err.wait is not None else wait
                log.warning("request to %s: %s; retry %d/%d in %.1fs", self.url, err, attempt + 1, self.max_retries, pause)
                time.sleep(pause)
                wait *= 2
        raise AssertionError("unreachable")

    @property
    def max_in_flight(self) -> int:
        """What the async schedule keeps in flight (mils/async_loop.py)."""
        return self.limit.maximum

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[str]:
        if len(prompts) == 1:  # the async schedule's requests: no pool per request
            return [self._one(prompts[0], seeds[0])]
        with ThreadPoolExecutor(max_workers=max(1, min(self.limit.maximum, len(prompts)))) as pool:
            return list(pool.map(self._one, prompts, seeds))

    def close(self) -> None:
        self.client.close()


LOCAL_CONCURRENCY, REMOTE_CONCURRENCY = 256, 8


def default_concurrency(base_url: str) -> int:
    """Requests at once when the config gives none: 256 for an engine on this machine (a vLLM or
    SGLang server on loopback batches them; it is most efficient at 256 or more), 8 for any other
    host (a hosted API's rate limits; give ``max_concurrency`` for an engine on another machine)."""
    from urllib.parse import urlsplit

    host = (urlsplit(base_url).hostname or "").lower()
    return LOCAL_CONCURRENCY if host in ("localhost", "::1") or host.startswith("127.") else REMOTE_CONCURRENCY


def api_key(env_var: str | None) -> str | None:
    """The key from the environment variable ``env_var`` names (None: no key, a local server)."""
    if env_var is None:
        return None
    if env_var not in os.environ:
        raise InputError(f"generator.options.api_key_env names {env_var!r}, which is not set in the environment")
    return os.environ[env_var]
