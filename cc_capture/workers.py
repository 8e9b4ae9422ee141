"""Worker subprocesses: heavy work (torch) runs in `python -m MODULE ARGS`, never in the daemon or
the CLI; the worker appends JSON lines to a progress file, and its starter follows them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

STARTER_PID = "CC_CAPTURE_STARTER_PID"  # set for a worker: the pid of the process that started it


def start(module: str, args: list[str], log_path: Path) -> subprocess.Popen:
    """Start `python -m module args`, its output appended to `log_path` (0600)."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as log:
        return subprocess.Popen([sys.executable, "-m", module, *args], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                env=dict(os.environ, TOKENIZERS_PARALLELISM="false", **{STARTER_PID: str(os.getpid())}))


def follow(progress_path: Path, proc: subprocess.Popen, poll_s: float = 0.2) -> Iterator[dict[str, Any]]:
    """Each JSON line the worker appends, as it appears, until the worker exits (the lines it wrote
    last included). Only complete lines are read: a line being written waits for the next poll."""
    offset = 0
    while True:
        running = proc.poll() is None
        if progress_path.exists():
            with open(progress_path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            offset += len(complete)
            for line in complete.decode().splitlines():
                yield json.loads(line)
        if not running:
            return
        time.sleep(poll_s)


def stop(proc: subprocess.Popen) -> None:
    """Ask the worker to stop (SIGTERM: it records itself as interrupted) and wait for it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.wait()


def stop_with_starter(poll_s: float = 0.5) -> None:
    """What a worker calls first: send itself SIGTERM (its Ctrl-C: a training run records itself
    interrupted) once the process that started it is gone, killed -9 or crashed. Otherwise it would
    train on unwatched while the next `ccd pipeline run` resumes the same run in a second worker."""
    starter = os.environ.get(STARTER_PID)
    if not starter:
        return

    def watch() -> None:
        while os.getppid() == int(starter):
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-starter", daemon=True).start()


def append_progress(path: Path, event: dict[str, Any]) -> None:
    """What a worker calls: one JSON line, appended whole."""
    with open(path, "a") as fh:
        fh.write(json.dumps(event) + "\n")
