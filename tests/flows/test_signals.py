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
from mils.components.plan import plan_run
from mils.config.run_config import load_config
from mils.storage.results import ResultStore
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
    samples_dir = plan_run(config).results_dir / "samples"
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
    assert f"{plan_run(config).results_dir}; run the same command again to resume" in out
    kept = ResultStore(plan_run(config).results_dir).results()
    assert 1 <= len(kept) < len(TARGETS)  # finished samples are whole files
    print(f"{how}: exit {code} {took:.1f} s after the signal, {len(kept)} of {len(TARGETS)} samples kept")
    rerun = run_benchmark(config)  # resumes: only the rest is computed
    assert rerun.counts["done"] == len(TARGETS) and rerun.counts["resumed"] >= len(kept)


def _stopper(tmp_path, body):
    script = tmp_path / "stopper.py"
    script.write_text("import sys\nsys.path.insert(0, %r)\nfrom cli.signals import stop_on_signals\n"
                      "with stop_on_signals('run it again'):\n%s\n" % (str(ROOT), body))
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_sigterm_stops_the_run_at_once_even_when_a_library_took_the_handler_over(tmp_path):
    """Prefect's flow engine installs its own SIGTERM handler for the flow run (capture_sigterm),
    which then waited for the shard in flight (a minute at paper settings): the stop must not depend
    on who holds the Python-level handler."""
    body = ("    import signal, time\n"
            "    signal.signal(signal.SIGTERM, lambda *a: print('the library handled it', flush=True))\n"
            "    print('ready', flush=True)\n    for _ in range(600):\n        time.sleep(0.1)")
    run = _stopper(tmp_path, body)
    try:
        assert run.stdout.readline().strip() == b"ready"
        time.sleep(0.5)
        sent = time.monotonic()
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 143
        assert time.monotonic() - sent < 10 and b"SIGTERM: stopping; run it again" in run.stdout.read()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)


def test_a_run_killed_outright_leaves_no_process_behind(tmp_path):
    """SIGKILL cannot be handled: the watchdog stops the processes the run had started."""
    body = ("    import subprocess, time\n    child = subprocess.Popen(['sleep', '300'])\n"
            "    print(child.pid, flush=True)\n    time.sleep(300)")
    run = _stopper(tmp_path, body)
    try:
        child = psutil.Process(int(run.stdout.readline()))
        time.sleep(1.5)  # the watchdog has seen it
        run.kill()
        assert run.wait(timeout=10) == -signal.SIGKILL
        _, alive = psutil.wait_procs([child], timeout=15)
        assert alive == [], "the run's child outlived it"
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)


def test_a_run_that_ends_normally_leaves_no_watchdog_and_restores_its_signals(tmp_path):
    run = _stopper(tmp_path, "    pass\nimport signal\nprint(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "
                             "signal.set_wakeup_fd(-1))")
    out, _ = run.communicate(timeout=30)
    assert run.returncode == 0 and out.split() == [b"True", b"-1"]


def test_ctrl_c_prints_its_line_once(tmp_path):
    """Issue 48, item 5: the Python handler and the wakeup thread both saw the signal: two lines."""
    body = "    import time\n    print('ready', flush=True)\n    for _ in range(600):\n        time.sleep(0.1)"
    run = _stopper(tmp_path, body)
    try:
        assert run.stdout.readline().strip() == b"ready"
        time.sleep(0.5)
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=20) == 130
        assert run.stdout.read().count(b"SIGINT: stopping; run it again") == 1
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
