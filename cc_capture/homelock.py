"""One lock per home folder: whoever holds `ccd.lock` is the journal's only ingester.

The daemon holds it for its lifetime; `ccd ingest`, the tests and the benchmarks take it for one
pass (cc_capture.pipeline.ingest). An flock is released by the kernel when its holder dies, so a
stale state file can never block a start. The daemon's state file beside it (`ccd.pid`) says
which daemon holds it, whether it is ready, its warnings, or why its last start failed; `info`
reads both without loading the daemon (`ccd status` must start fast).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Iterator

from cc_capture import processes
from cc_capture.paths import Paths


class HomeBusy(Exception):
    """Another process (the daemon, another `ccd ingest`) holds this home's lock."""


@dataclass
class DaemonInfo:
    running: bool
    pid: int | None
    uptime_s: float | None
    ready: bool = False  # the store and the watchers are up: it ingests
    warnings: list[str] = field(default_factory=list)  # degraded, still running (polling, database restored)
    error: str | None = None  # why the last start failed, when it is not running


@contextmanager
def hold(paths: Paths) -> Iterator[IO[str]]:
    """Hold the home's lock for the duration of the block; HomeBusy at once if someone else does."""
    paths.ensure()
    fd = os.open(paths.lockfile, os.O_RDWR | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # also when an older version left it 0644
    lock = os.fdopen(fd, "r+")
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


def read_state(paths: Paths) -> dict:
    """The daemon's state file (`ccd.pid`): pid, start time, ready, warnings, or why it could not start."""
    try:
        meta = json.loads(paths.pidfile.read_text())
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def write_state(paths: Paths, state: dict) -> None:
    tmp = paths.pidfile.with_name(paths.pidfile.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(state))
    os.replace(tmp, paths.pidfile)


def info(paths: Paths) -> DaemonInfo:
    """Whether a daemon holds this home's lock; its pid, uptime, readiness and warnings from the
    state file; or, when none runs, why the last start failed."""
    if not paths.lockfile.exists():
        return DaemonInfo(False, None, None)
    with open(paths.lockfile, "r") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(fh, fcntl.LOCK_UN)
            return DaemonInfo(False, None, None, error=read_state(paths).get("error"))
    meta = read_state(paths)
    try:
        pid = int(meta["pid"])
        current = DaemonInfo(True, pid, round(time.time() - float(meta["started_at"]), 1),
                             bool(meta.get("ready")), list(meta.get("warnings", [])))
    except (ValueError, KeyError, TypeError):
        return DaemonInfo(True, None, None)
    if not processes.running(pid, meta.get("pid_start")):
        # a killed daemon's state (its pid gone, or reused by another process), read after its
        # successor took the lock and before it wrote its own
        return DaemonInfo(True, None, None)
    return current

