"""Which process is which, across restarts: a pid and the process's start time.

A pid alone is not an identity: once a process dies its pid is free, and after a reboot or a busy
day another process may have it. A recorded (pid, start) pair names one process for good: it is
running only while a process with that pid and that start time exists. The start time is read
from /proc on Linux and from `ps` elsewhere (macOS); where neither answers, the pid alone decides.
"""

from __future__ import annotations

import os
import select
import subprocess
import time


def alive(pid: int) -> bool:
    """A process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, not ours to judge
        return True
    try:  # a zombie (dead, not yet reaped by its parent) is not running; /proc is Linux's
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def suspended_s() -> float | None:
    """Seconds this machine has spent suspended (asleep) since it booted, the same in every process:
    the clock that runs through sleep minus the one that stops (Linux: BOOTTIME - MONOTONIC;
    macOS: MONOTONIC - UPTIME_RAW); None where neither pair exists. A heartbeat judged by wall time
    alone takes a laptop's night asleep for a frozen process."""
    pairs = [("CLOCK_BOOTTIME", "CLOCK_MONOTONIC"), ("CLOCK_MONOTONIC", "CLOCK_UPTIME_RAW")]
    for running_through_sleep, stopping_in_sleep in pairs:
        through, stopping = getattr(time, running_through_sleep, None), getattr(time, stopping_in_sleep, None)
        if through is not None and stopping is not None:
            try:
                return max(0.0, time.clock_gettime(through) - time.clock_gettime(stopping))
            except OSError:
                continue
    return None


def start_time(pid: int) -> str | None:
    """When the process started, as an opaque string that differs between two processes that had
    the same pid (None if it cannot be read, or no such process)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:  # field 22: start time in clock ticks after boot
            return "linux:" + fh.read().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None  # Linux, and no such process
    except OSError:
        return None
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return "ps:" + out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def running(pid: int | None, started: str | None) -> bool:
    """The process recorded as (pid, started) still runs (not another one that got its pid). A pid
    under 1 names none (signalling 0 would reach this process group)."""
    if pid is None or pid < 1 or not alive(pid):
        return False
    if started is None:
        return True  # recorded without a start time: the pid is all there is
    now = start_time(pid)
    return now is None or now == started


def wait_exit(pid: int, started: str | None, poll_s: float) -> None:
    """Wait until the process (pid, started), which need not be our child, has ended: at once
    through a pidfd on Linux, else by looking every `poll_s` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            if running(pid, started):  # the pid is still the recorded process's (opened after the check: same)
                select.select([fd], [], [])
            return
        finally:
            os.close(fd)
    while running(pid, started):
        time.sleep(poll_s)


def interruptible() -> None:
    """Make SIGINT raise KeyboardInterrupt in this process even when it was started with SIGINT
    ignored, as a background job of a non-interactive shell is (a script's `ccd pipeline run &`, or a
    daemon started from one, whose pipelines inherit it). Ctrl-C and `ccd pipeline stop` are how the
    long commands are stopped cleanly (the worker saves, the step is recorded, the worktree goes):
    an ignored SIGINT would leave them running and their records saying `running`. Signal handlers
    belong to the main thread: called from another (a test's or an embedding program's), it does
    nothing."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
