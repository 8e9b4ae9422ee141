"""`ccd pipeline stop`: interrupt the running pipeline as Ctrl-C would."""

from __future__ import annotations

import os
import signal
import time

from cc_capture.learning_state import Holder, holder
from cc_capture.processes import running
from cc_capture.paths import Paths


def stop(paths: Paths, timeout_s: float = 120.0) -> Holder | None:
    """Interrupt the running pipeline as Ctrl-C would (it stops its training worker, which saves
    where it was, and records the step interrupted: the next run resumes it) and wait for it to
    end; None if none runs. Raises TimeoutError if it has not ended within `timeout_s`."""
    stopping = holder(paths)
    if stopping is None:
        return None
    os.kill(stopping.pid, signal.SIGINT)
    deadline = time.time() + timeout_s
    while running(stopping.pid, stopping.started):
        if time.time() > deadline:
            raise TimeoutError(f"{stopping} did not stop within {timeout_s:.0f}s; `kill {stopping.pid}` ends it "
                               "(the next run resumes it from its last finished step)")
        time.sleep(0.2)
    return stopping
