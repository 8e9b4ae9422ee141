"""Size-capped logs: `logs/daemon.log` and `hook-errors.log` would otherwise grow for as long as
cc-capture is installed. One older generation (`<name>.1`) is kept beside each."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def rotate(path: Path, max_bytes: int) -> bool:
    """Move `path` to `path.1` (replacing the older one) once it is larger than `max_bytes`.

    Safe while others append: the hook opens `hook-errors.log` afresh for each line, so its next
    line starts a new file; a line being written lands in `.1`."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    os.replace(path, path.with_name(path.name + ".1"))
    return True


def rotate_own_log(path: Path, max_bytes: int) -> bool:
    """Rotate the log this process writes on stdout/stderr (`ccd daemon start` points them at
    daemon.log), then point them at a fresh file so later lines do not go to `.1`."""
    try:
        before = path.stat()
    except FileNotFoundError:
        return False
    if not rotate(path, max_bytes):
        return False
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for std in (1, 2):
            st = os.fstat(std)
            if (st.st_dev, st.st_ino) == (before.st_dev, before.st_ino):
                os.dup2(fd, std)
    finally:
        os.close(fd)
    return True
