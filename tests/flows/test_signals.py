"""Ctrl-C and SIGTERM to a real `mils run`: it stops within seconds, keeps what is finished, stops
the processes it started (Prefect's temporary server), says how to resume and exits 130 / 143."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from flows.benchmark import run_benchmark
from mils.config import load_config
from mils.results import ResultStore
from tests.flows.conftest import TARGETS


def _start(path, tmp_path, log):
    return subprocess.Popen([sys.executable, "-m", "cli", "run", str(path)], cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_a_finished_sample(run, samples_dir, log_path, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if samples_dir.is_dir() and any(samples_dir.glob("*.json")):
            return
        assert run.poll() is None, log_path.read_text()[-2000:]
        time.sleep(0.2)
    raise AssertionError("no sample finished in time: " + log_path.read_text()[-2000:])


@pytest.mark.slow
@pytest.mark.parametrize("how, code", [("ctrl-c", 130), ("sigterm", 143)])
def test_a_signal_stops_the_run_at_once_keeps_the_finished_samples_and_its_server(how, code, flow_config,
                                                                                  repo_on_pythonpath, tmp_path):
    # one sample per batch, 1 s an LLM call, 3 steps: a sample takes ~3 s, the run ~20 s
    path, _ = flow_config(generator__options={"delay": 1.0}, batch_size=1)
    config = load_config(path)
    samples_dir = config.results_dir() / "samples"
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        run = _start(path, tmp_path, log)
        try:
            _wait_for_a_finished_sample(run, samples_dir, log_path)
            children = psutil.Process(run.pid).children(recursive=True)
            assert children, "the run started Prefect's temporary server"
            sent = time.monotonic()
            if how == "ctrl-c":  # a terminal sends SIGINT to the whole foreground process group
                os.killpg(run.pid, signal.SIGINT)
            else:
                run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=30) == code, log_path.read_text()[-2000:]
            took = time.monotonic() - sent
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], "every process the run started is stopped"
    assert took < 15, f"{took:.1f} s from the signal to the exit"
    out = log_path.read_text()
    assert f"{config.results_dir()}; run the same command again to resume" in out
    kept = ResultStore(config.results_dir()).results()
    assert 1 <= len(kept) < len(TARGETS)  # finished samples are whole files
    print(f"{how}: exit {code} {took:.1f} s after the signal, {len(kept)} of {len(TARGETS)} samples kept")
    rerun = run_benchmark(config)  # resumes: only the rest is computed
    assert rerun.counts["done"] == len(TARGETS) and rerun.counts["resumed"] >= len(kept)
