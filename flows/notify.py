"""Alerts for unattended reruns: a pipeline YAML's ``notify:`` webhooks hear when a rerun fails,
crashes, or is tagged a regression.

``notify:`` is a list; each entry a URL, or ``{url: ..., format: slack | json}``. The format is
``slack`` (``{"text": ...}``, what Slack, Mattermost and Rocket.Chat incoming webhooks take) for
``hooks.slack.com`` addresses and ``json`` (the whole message as JSON) otherwise, unless given.
A message that cannot be delivered is logged and retried a few times; it never fails the run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from mils.errors import InputError

log = logging.getLogger(__name__)

ATTEMPTS, FIRST_WAIT = 3, 1.0  # a message is tried 3 times, 1 s then 2 s apart


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
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"{where}[{n}]: {entry!r} is not an http(s) URL")
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


def send(hooks: tuple[Webhook, ...], message: dict[str, Any], attempts: int = ATTEMPTS,
         first_wait: float = FIRST_WAIT) -> list[str]:
    """POST ``message`` to every webhook; returns the URLs that could not be reached (logged)."""
    import httpx

    failed = []
    for hook in hooks:
        body = {"text": summary_text(message)} if hook.format == "slack" else message
        wait = first_wait
        for attempt in range(1, attempts + 1):
            try:
                reply = httpx.post(hook.url, content=json.dumps(body, default=str),
                                   headers={"Content-Type": "application/json"}, timeout=10)
                if reply.status_code < 300:
                    break
                problem = f"HTTP {reply.status_code}"
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}: {err}"
            log.warning("notification to %s failed (attempt %d/%d): %s", hook.url, attempt, attempts, problem)
            if attempt == attempts:
                failed.append(hook.url)
            else:
                time.sleep(wait)
                wait *= 2
    return failed


def prefect_run_url(flow_run_id: Any) -> str | None:
    """The flow run's page in the Prefect UI, when the API address is known."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    base = PREFECT_UI_URL.value() or (PREFECT_API_URL.value() or "").removesuffix("/api")
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


def on_failure(flow, flow_run, state) -> None:
    """Prefect state hook (failed or crashed pipeline runs): tell the pipeline's webhooks. The
    YAML is read again here; one that cannot be read is logged, never raised."""
    from flows.pipeline import read_pipeline_notify

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


def regression_message(config, vs_previous: dict[str, Any], follows: str, parent_id: str) -> dict[str, Any]:
    """The alert for a rerun tagged ``mils.regression``: the metrics that moved, with their paired
    delta and interval, and what changed since the previous rerun."""
    from prefect.runtime import flow_run

    return {"event": "regression", "pipeline": config.name, "metrics": vs_previous["deltas"],
            "changed": provenance_changes(follows, parent_id), "previous_run": follows, "run": parent_id,
            "results_dir": str(config.results_dir()), "mlflow": f"{config.tracking.uri} (run {parent_id})",
            "prefect": prefect_run_url(flow_run.root_flow_run_id or flow_run.id) if flow_run.id else None}
