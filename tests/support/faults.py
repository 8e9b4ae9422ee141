"""Real faults for the fault-matrix tests (tests/faults/): busy cores, a small full disk."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest


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
    """Fill the file system holding `path` until a write fails (ENOSPC)."""
    with open(path / "filler", "wb") as fh:
        block = b"\0" * 65536
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError:
            pass
    with contextlib.suppress(OSError), open(path / "filler-tail", "wb") as fh:  # the last partial block
        while True:
            fh.write(b"\0")
            fh.flush()
