"""One lock per home folder: whoever holds `ccd.lock` is the journal's only ingester.

The daemon holds it for its lifetime; `ccd ingest`, the tests and the benchmarks take it for one
pass (cc_capture.pipeline.ingest). An flock is released by the kernel when its holder dies, so a
stale pidfile can never block a start. The pidfile beside it says which daemon holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Iterator

from cc_capture.paths import Paths


class HomeBusy(Exception):
    """Another process (the daemon, another `ccd ingest`) holds this home's lock."""


@dataclass
class DaemonInfo:
    running: bool
    pid: int | None
    uptime_s: float | None


@contextmanager
def hold(paths: Paths) -> Iterator[IO[str]]:
    """Hold the home's lock for the duration of the block; HomeBusy at once if someone else does."""
    paths.ensure()
    lock = os.fdopen(os.open(paths.lockfile, os.O_RDWR | os.O_CREAT, 0o600), "r+")
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HomeBusy(f"another ccd process holds {paths.lockfile}") from None
        try:
            yield lock
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    finally:
        lock.close()


def info(paths: Paths) -> DaemonInfo:
    """Whether a daemon holds this home's lock, and its pid and uptime from the pidfile."""
    if not paths.lockfile.exists():
        return DaemonInfo(False, None, None)
    with open(paths.lockfile, "r") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(fh, fcntl.LOCK_UN)
            return DaemonInfo(False, None, None)
    try:
        meta = json.loads(paths.pidfile.read_text())
        return DaemonInfo(True, int(meta["pid"]), round(time.time() - float(meta["started_at"]), 1))
    except (OSError, ValueError, KeyError):
        return DaemonInfo(True, None, None)
