"""vLLM through its OpenAI-compatible server: how a run in the main environment uses vLLM.

vLLM pins its own torch, which breaks torchvision and so open_clip: it lives in a separate
environment (``make vllm`` -> ``.venv-vllm``). The ``vllm`` generator in this environment starts
that environment's server on loopback, with the same model directory and engine options, and sends
it every prompt of a step at once (the server batches them continuously); or it talks to a server
that already runs (``server: http://gpu-box:8000``, started with ``--served-model-name`` = ``served_name``).
Per-request seeds, the model's chat template, the cut-off line and token counts are as in-process.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mils.engine.sampling import SamplingOptions
from mils.errors import ComponentError
from mils.generators.openai_api import OpenAIGenerator
from mils.generators.vllm_memory import engine_error

log = logging.getLogger(__name__)

# `make vllm` records its environment's interpreter here, in the main environment
VLLM_RECORD = Path(sys.prefix) / "mils-vllm-python"


def vllm_python() -> Path | None:
    """The interpreter of an environment with vLLM: ``MILS_VLLM_PYTHON``, else the one `make vllm`
    recorded in this environment (``<sys.prefix>/mils-vllm-python``); None when neither is there."""
    named = os.environ.get("MILS_VLLM_PYTHON") or (VLLM_RECORD.read_text().strip() if VLLM_RECORD.is_file() else "")
    path = Path(named).expanduser() if named else None
    return path if path is not None and path.is_file() else None


def server_flags(engine_args: dict[str, Any]) -> list[str]:
    """Engine keyword arguments as ``vllm serve`` flags (``enforce_eager=True`` -> ``--enforce-eager``)."""
    flags: list[str] = []
    for key, value in engine_args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False:
            flags.append("--no-" + key.replace("_", "-"))
        elif value is not None:
            flags += [flag, str(value)]
    return flags


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    """A vLLM OpenAI-compatible server process on loopback, owned by this process: stopped by
    :meth:`close` or when this process exits (not when it is SIGKILLed)."""

    def __init__(self, python: Path, model_dir: str, engine_args: dict[str, Any], log_dir: Path,
                 served_name: str = "mils", start_timeout: float = 900.0, plan: str = "") -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"vllm-server-{self.port}.log"
        command = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
                   "--host", "127.0.0.1", "--port", str(self.port), "--served-model-name", served_name,
                   *server_flags(engine_args)]
        log.info("starting vLLM's server (%s); its log: %s", python, self.log_path)
        with open(self.log_path, "w") as out:
            out.write(f"mils: {plan or 'engine options as given'}\n")
            out.flush()
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        atexit.register(self.close)
        try:
            self._wait(start_timeout)
        except BaseException:
            self.close()
            raise

    def _wait(self, timeout: float) -> None:
        import httpx

        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                raise ComponentError(f"vLLM's server exited with {self.process.returncode} while starting: "
                                     f"{self.start_failure()} (its log: {self.log_path})")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    log.info("vLLM's server is up after %.0f s", time.monotonic() - start)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise ComponentError(f"vLLM's server did not start in {timeout:.0f} s; its log: {self.log_path}")

    def start_failure(self) -> str:
        """What stopped the engine, in one line, from its log."""
        if self.process.returncode in (-signal.SIGKILL, 137):
            return "it was killed (out of memory?)"
        return engine_error(self.log_path.read_text(errors="replace")) or "see the end of its log"

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class VLLMServerGenerator(OpenAIGenerator):
    """The ``vllm`` generator's contract over HTTP: vLLM's server is an OpenAI-compatible endpoint,
    so requests go out as the openai backend's do (one event loop, up to ``concurrency`` in flight,
    :meth:`submit` for the async schedule, a 5xx or a dropped connection retried twice), with the
    served name as the model and no reasoning tags; a failure shows the end of the server's log."""

    def __init__(self, url: str, sampling: SamplingOptions | None = None, served_name: str = "mils",
                 server: VLLMServer | None = None, concurrency: int = 256) -> None:
        super().__init__(url.rstrip("/") + "/v1", served_name, sampling or SamplingOptions(), max_concurrency=concurrency,
                         max_retries=2, timeout=3600.0, backoff=0.5, reasoning_tag=None)
        self.server = server

    def failed(self, why: str) -> ComponentError:
        tail = f"\nthe end of its log:\n{self.server.log_tail()}" if self.server else ""
        return ComponentError(f"vLLM's server: {why}{tail}")

    def close(self) -> None:
        super().close()
        if self.server is not None:
            self.server.close()
