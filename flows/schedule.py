"""Scheduled reruns that run unattended: served from one box, or deployed to a Prefect work pool
that GPU machines' workers pick up; at most N at a time; old dated folders pruned.

- ``serve_pipeline``: ``mils schedule`` without ``--pool``. The schedule lives in this process
  (``pause_on_shutdown=False``: restarting the process does not pause the schedule).
- ``deploy_to_pool``: ``mils schedule --pool NAME``. The deployment points at this checkout (its
  folder is the flow's source and the YAML's path is absolute), so a worker started from the same
  checkout and environment runs it: ``.venv/bin/prefect worker start --pool NAME``.
- Both: a deployment concurrency limit (default 1) with the collision strategy ``cancel`` (a run
  due while one is going is cancelled, its state message says why) or ``queue`` (it waits).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mils.errors import InputError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
ENTRYPOINT = "flows/pipeline.py:pipeline_flow"
POOL_TYPES = ("process", "docker", "kubernetes")  # process pools are created here; the others need their package
COLLISIONS = ("cancel", "queue")


def checked_cron(cron: str) -> str:
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron)
    except ValidationError:
        raise InputError(f"--cron {cron!r} is not a cron string (five fields, e.g. '0 3 * * 1': Mondays 03:00)") from None
    return cron


def concurrency(limit: int, collision: str):
    """Prefect's deployment concurrency limit: ``limit`` runs at once (0: no limit)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    if collision not in COLLISIONS:
        raise InputError(f"--collision is one of {', '.join(COLLISIONS)}, not {collision!r}")
    if limit < 0:
        raise InputError(f"--max-running must be 0 (no limit) or more, not {limit}")
    strategy = ConcurrencyLimitStrategy.CANCEL_NEW if collision == "cancel" else ConcurrencyLimitStrategy.ENQUEUE
    return ConcurrencyLimitConfig(limit=limit, collision_strategy=strategy) if limit else None


def _parameters(config_path: str | Path) -> dict[str, Any]:
    return {"config_path": str(Path(config_path).resolve()), "fresh": True}


def serve_pipeline(config_path: str | Path, name: str, cron: str, limit: int = 1, collision: str = "cancel") -> None:
    from flows.pipeline import pipeline_flow

    pipeline_flow.serve(name=name, cron=checked_cron(cron), parameters=_parameters(config_path),
                        global_limit=concurrency(limit, collision), pause_on_shutdown=False)


def ensure_pool(pool: str, pool_type: str) -> str:
    """The work pool ``pool`` (created when missing, for ``process``); returns what happened."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    if pool_type not in POOL_TYPES:
        raise InputError(f"--pool-type is one of {', '.join(POOL_TYPES)}, not {pool_type!r}")
    with get_client(sync_client=True) as client:
        try:
            existing = client.read_work_pool(pool)
        except ObjectNotFound:
            existing = None
        if existing is not None:
            if existing.type != pool_type:
                raise InputError(f"work pool {pool!r} exists with type {existing.type!r}, not {pool_type!r}")
            return "exists"
        if pool_type != "process":
            raise InputError(f"work pool {pool!r} does not exist; create it where prefect-{pool_type} is installed: "
                             f"prefect work-pool create {pool} --type {pool_type}")
        from prefect.workers.process import ProcessWorker

        client.create_work_pool(WorkPoolCreate(name=pool, type="process",
                                               base_job_template=ProcessWorker.get_default_base_job_template()))
        return "created"


def deploy_to_pool(config_path: str | Path, name: str, cron: str, pool: str, pool_type: str = "process",
                   limit: int = 1, collision: str = "cancel", job_variables: dict[str, Any] | None = None) -> str:
    """Register the pipeline deployment on work pool ``pool``; returns the deployment id."""
    from flows.pipeline import pipeline_flow

    cron, limit_config = checked_cron(cron), concurrency(limit, collision)
    ensure_pool(pool, pool_type)
    source = pipeline_flow.from_source(source=str(REPO), entrypoint=ENTRYPOINT)
    deployment_id = source.deploy(name=name, work_pool_name=pool, cron=cron, parameters=_parameters(config_path),
                                  concurrency_limit=limit_config, job_variables=job_variables or {},
                                  build=False, push=False, print_next_steps=False)
    return str(deployment_id)
