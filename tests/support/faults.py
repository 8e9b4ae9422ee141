"""Real faults for the fault-matrix tests (tests/faults/): busy cores, a small full disk."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest


_PEAK_LAUNCHER = """import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
sys.stderr.write("\\npeak-rss-kb %d\\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


def run_measuring_peak_rss(argv: list[str]) -> tuple[int, bytes, bytes, float]:
    """Run argv; return its exit code, stdout, stderr and peak resident memory in MB.

    Measured by a small launcher process, not by waiting on the child directly: Linux carries the
    forking process's own peak into a child's ru_maxrss across exec, and pytest grows to hundreds
    of MB over a full run, which would then be counted as the child's."""
    p = subprocess.run([sys.executable, "-c", _PEAK_LAUNCHER, *argv], capture_output=True, timeout=600)
    err, _, tail = p.stderr.rpartition(b"\npeak-rss-kb ")
    return p.returncode, p.stdout, err, int(tail) / 1024


@contextlib.contextmanager
def busy_cores(n: int | None = None) -> Iterator[None]:
    """Every core busy with a spinning process (a loaded machine widens every race window)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n or os.cpu_count() or 2)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "2m") -> Iterator[Path]:
    """A real tmpfs of `size` mounted at `path` (root only; the test is skipped with the reason otherwise)."""
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {p.stderr.strip() or p.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> None:
    """Fill the file system holding `path` until a write fails (ENOSPC). Unbuffered: a buffered
    file keeps what a partial write left over and raises ENOSPC again when closed, so whether the
    helper itself failed depended on how the free space divided into blocks."""
    with open(path / "filler", "wb", buffering=0) as fh:
        for size in (65536, 1):  # big blocks, then byte by byte into what is left
            with contextlib.suppress(OSError):
                while fh.write(b"\0" * size):
                    pass


def block_until(path: str) -> None:
    """Keep a worker process busy until `path` exists (a task for a process pool: it fills the pool's
    queue, so what is submitted after it waits, unstarted, for as long as the test needs)."""
    import time

    while not os.path.exists(path):
        time.sleep(0.01)
