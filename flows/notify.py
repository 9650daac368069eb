"""Alerts for unattended reruns: a pipeline YAML's ``notify:`` webhooks hear when a rerun fails,
crashes, or is tagged a regression.

``notify:`` is a list; each entry a URL, or ``{url: ..., format: slack | json}``. The format is
``slack`` (``{"text": ...}``, what Slack, Mattermost and Rocket.Chat incoming webhooks take) for
``hooks.slack.com`` addresses and ``json`` (the whole message as JSON) otherwise, unless given.
A message that cannot be delivered is logged (the host only: a webhook URL is a secret) and
retried a few times; it never fails the run, and never holds it: each try has a total time bound
(a receiver that trickles bytes is cut off) and the reply's body is never read.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from mils.config import read_yaml
from mils.errors import InputError

log = logging.getLogger(__name__)

ATTEMPTS, FIRST_WAIT = 3, 1.0  # a message is tried 3 times, 1 s then 2 s apart
TRY_SECONDS = 10.0  # all of one try: connecting, sending, the reply's status line and headers


@dataclass(frozen=True)
class Webhook:
    url: str
    format: Literal["slack", "json"]


def read_notify(raw: Any, where: str = "notify") -> tuple[Webhook, ...]:
    """The ``notify:`` section as webhooks; a mistake is one line naming the entry."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(f"{where} must be a list of webhook URLs (or {{url, format}} entries), not {raw!r}")
    hooks = []
    for n, entry in enumerate(raw):
        url, fmt = (entry, None) if isinstance(entry, str) else (
            (entry.get("url"), entry.get("format")) if isinstance(entry, dict) else (None, None))
        if isinstance(url, str) and any(ord(c) < 33 or ord(c) == 127 for c in url):
            raise InputError(f"{where}[{n}]: a webhook URL cannot hold spaces or control characters (CR, LF, tab)")
        try:
            parsed = urlparse(url) if isinstance(url, str) else None
            _ = parsed.hostname if parsed else None  # a malformed IPv6 address raises only when this is read
        except ValueError:
            raise InputError(f"{where}[{n}]: not a valid URL (a malformed IPv6 address?)") from None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"{where}[{n}]: not an http(s) URL (host {host_of(url)!r})")
        if isinstance(entry, dict) and set(entry) - {"url", "format"}:
            raise InputError(f"{where}[{n}]: unknown keys {sorted(set(entry) - {'url', 'format'})}; known: url, format")
        if fmt not in (None, "slack", "json"):
            raise InputError(f"{where}[{n}].format is slack or json, not {fmt!r}")
        hooks.append(Webhook(url, fmt or ("slack" if parsed.netloc == "hooks.slack.com" else "json")))
    return tuple(hooks)


def summary_text(message: dict[str, Any]) -> str:
    """One readable paragraph of a message (the Slack body)."""
    lines = [f"MILS pipeline {message.get('pipeline')!r}: {message.get('event')}"]
    if message.get("state_message"):
        lines.append(str(message["state_message"]))
    for name, d in (message.get("metrics") or {}).items():
        lines.append(f"{name}: {d['delta']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] vs the previous rerun")
    for key, (before, now) in (message.get("changed") or {}).items():
        lines.append(f"changed: {key} {before} -> {now}")
    for key in ("prefect", "mlflow"):
        if message.get(key):
            lines.append(f"{key}: {message[key]}")
    return "\n".join(lines)


def host_of(url: Any) -> str:
    """What a log may say of a webhook: its host (the path and query of a Slack URL are its secret)."""
    try:
        return (urlparse(url).hostname or "?") if isinstance(url, str) else "?"
    except ValueError:  # a malformed IPv6 address
        return "?"


def send(hooks: tuple[Webhook, ...], message: dict[str, Any], attempts: int = ATTEMPTS,
         first_wait: float = FIRST_WAIT, try_seconds: float = TRY_SECONDS) -> list[str]:
    """POST ``message`` to every webhook; returns the hosts that could not be reached (logged)."""
    failed = []
    for hook in hooks:
        body = {"text": summary_text(message)} if hook.format == "slack" else message
        data = json.dumps(body, default=str).encode()
        wait = first_wait
        for attempt in range(1, attempts + 1):
            problem = _post(hook.url, data, try_seconds)
            if problem is None:
                break
            log.warning("notification to %s failed (attempt %d/%d): %s", host_of(hook.url), attempt, attempts, problem)
            if attempt == attempts:
                failed.append(host_of(hook.url))
            else:
                time.sleep(wait)
                wait *= 2
    return failed


def _post(url: str, data: bytes, seconds: float) -> str | None:
    """One try, over within ``seconds`` whatever the receiver does: None, or what went wrong. Runs
    its own event loop on a thread of its own (a failure hook may run inside someone's loop)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import aiohttp

    async def post() -> str | None:
        timeout = aiohttp.ClientTimeout(total=seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                url, data=data, headers={"Content-Type": "application/json"}, allow_redirects=False) as reply:
            return None if reply.status < 300 else f"HTTP {reply.status}"  # the body is never read

    def run() -> str | None:
        try:
            return asyncio.run(post())
        except asyncio.TimeoutError:
            return f"no answer within {seconds:.0f} s"
        except (aiohttp.ClientError, OSError, ValueError) as err:
            return type(err).__name__
    with ThreadPoolExecutor(1, thread_name_prefix="mils-notify") as pool:
        return pool.submit(run).result()


def read_pipeline_notify(path: str | Path) -> tuple[tuple[Webhook, ...], str, str | None]:
    """Only what a failure alert needs (webhooks, pipeline name, MLflow address): read even when
    the rest of the YAML is what failed."""
    raw = read_yaml(path)
    return (read_notify(raw.get("notify"), f"{path}: notify"), str(raw.get("name") or Path(path).stem),
            (raw.get("tracking") or {}).get("uri"))


def prefect_run_url(flow_run_id: Any) -> str | None:
    """The flow run's page in the Prefect UI, when the API address is known."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    base = PREFECT_UI_URL.value() or (PREFECT_API_URL.value() or "").removesuffix("/api")
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


def on_failure(flow, flow_run, state) -> None:
    """Prefect state hook (failed or crashed pipeline runs): tell the pipeline's webhooks. The
    YAML is read again here; one that cannot be read is logged, never raised."""
    path = (flow_run.parameters or {}).get("config_path")
    try:
        hooks, name, tracking = read_pipeline_notify(path)
    except Exception as err:  # the failure may be the YAML itself: nothing to notify from
        log.warning("no notification for flow run %s: cannot read %s (%s)", flow_run.id, path, err)
        return
    if hooks:
        send(hooks, {"event": state.type.value.lower(), "pipeline": name, "config": path,
                     "state_message": state.message, "prefect": prefect_run_url(flow_run.id),
                     "mlflow": tracking, "host": os.uname().nodename})


def provenance_changes(before_run: str, now_run: str) -> dict[str, tuple[str | None, str | None]]:
    """What differs between two pipeline runs' recorded provenance (git revision, package
    versions, model revisions: the tags of their config child runs)."""
    import mlflow

    client = mlflow.MlflowClient()

    def tags(parent_id: str) -> dict[str, str]:
        experiment = client.get_run(parent_id).info.experiment_id
        children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_id}' and "
                                                    "tags.`mils.kind` = 'config'", max_results=1)
        found = children[0].data.tags if children else {}
        return {k: v for k, v in found.items() if k == "git_revision" or k.startswith(("version.", "model."))}

    before, now = tags(before_run), tags(now_run)
    return {k: (before.get(k), now.get(k)) for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)}


def regression_message(plan, vs_previous: dict[str, Any], follows: str, parent_id: str) -> dict[str, Any]:
    """The alert for a rerun tagged ``mils.regression``: the metrics that moved, with their paired
    delta and interval, and what changed since the previous rerun."""
    from prefect.runtime import flow_run

    config = plan.config
    return {"event": "regression", "pipeline": config.name, "metrics": vs_previous["deltas"],
            "changed": provenance_changes(follows, parent_id), "previous_run": follows, "run": parent_id,
            "results_dir": str(plan.results_dir), "mlflow": f"{config.tracking.uri} (run {parent_id})",
            "prefect": prefect_run_url(flow_run.root_flow_run_id or flow_run.id) if flow_run.id else None}
