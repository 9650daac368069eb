"""A long run stops on Ctrl-C or SIGTERM within seconds, whatever its main thread is doing, and
leaves no process behind, even when it is killed outright.

- A Python signal handler runs only when the main thread gets back to Python code; a main thread
  stuck in a long C call (a model load, a wait inside a library) held the stop for a minute. Here
  the interpreter's C-level handler also writes the signal's number to a pipe
  (``signal.set_wakeup_fd``) the moment it arrives, and a thread reading that pipe stops the run.
  (Blocking the signals in every thread instead would pass the blocked mask on to every process
  started later, which then ignore SIGTERM.)
- A watchdog process notes this process's children (Prefect's temporary server, a vLLM server,
  Dask workers) every second; when this process is gone without stopping them (SIGKILL, the OOM
  killer) it stops them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import Iterator

SIGNALS = {signal.SIGINT, signal.SIGTERM}

_WATCHDOG = """
import os, signal, sys, time
import psutil
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
parent, me, known = psutil.Process(int(sys.argv[1])), os.getpid(), {}
while True:
    try:
        if parent.status() == psutil.STATUS_ZOMBIE:
            break
        known.update({p.pid: p for p in parent.children(recursive=True) if p.pid != me})
    except psutil.NoSuchProcess:
        break
    time.sleep(1)
left = [p for p in known.values() if p.is_running()]
for p in left:
    try:
        p.terminate()
    except psutil.Error:
        pass
for p in psutil.wait_procs(left, timeout=5)[1]:
    try:
        p.kill()
    except psutil.Error:
        pass
"""


@contextlib.contextmanager
def stop_on_signals(resume: str) -> Iterator[None]:
    """Ctrl-C (SIGINT) or SIGTERM stops a long run within seconds: every sample already written is
    kept (results are written per batch, atomically; the batch in flight is redone on resume), the
    processes this one started are stopped, ``resume`` says how to go on, and the exit code is
    128 + the signal (130, 143)."""

    once = threading.Lock()  # the Python handler and the wakeup thread both see one signal: one stop, one line

    def stop(signum: int) -> None:
        if not once.acquire(blocking=False):
            return
        print(f"\nmils: {signal.Signals(signum).name}: stopping; {resume}", file=sys.stderr, flush=True)
        stop_children()
        os._exit(128 + signum)

    def watch(pipe: int) -> None:
        while data := os.read(pipe, 1):  # empty: the pipe was closed, the run ended
            if data[0] in SIGNALS:
                stop(data[0])

    previous = {s: signal.signal(s, lambda signum, frame: stop(signum)) for s in SIGNALS}
    read, write = os.pipe()
    os.set_blocking(write, False)  # the C handler must never block
    wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    threading.Thread(target=watch, args=(read,), name="mils-signals", daemon=True).start()
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid())], stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        watchdog.terminate()
        signal.set_wakeup_fd(wakeup)
        os.close(write)
        for s, handler in previous.items():
            signal.signal(s, handler)
        watchdog.wait()


def stop_children(grace: float = 5.0) -> None:
    """Terminate this process's children (and theirs), then kill what is left after ``grace`` s."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
