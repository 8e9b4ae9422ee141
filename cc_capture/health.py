"""Checks of the things a user's machine breaks under cc-capture: a damaged database, a full disk.

The daemon runs them at start and as it goes, `ccd status` shows what they find, and `ccd doctor`
calls the same functions, so one place says what is wrong and what to do about it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

# Below this, a hook cannot be sure to write a record: the disk counts as full.
DISK_FULL_BYTES = 1 << 20
# Below this, say so before it is full.
DISK_LOW_BYTES = 256 << 20


@dataclass
class DatabaseHealth:
    ok: bool
    problems: list[str] = field(default_factory=list)  # what SQLite reported, first few
    advice: str | None = None  # what to do, when not ok


def recovery_advice(db_path: Path) -> str:
    return (f"move it aside (with the daemon stopped: `ccd daemon stop; mv {db_path} {db_path}.damaged`), "
            "then `ccd daemon start` makes a new one and `ccd import` rebuilds the traces from Claude Code's "
            "transcripts; events not yet ingested wait safely in the journal")


def database_access(db_path: Path) -> str | None:
    """Why this user cannot read and write the database (and its log, and its folder), or None: a
    file left by another user (a `sudo ccd ...`) stops the daemon, so say which and how to fix it."""
    for path in (db_path.parent, db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if not os.access(path, os.R_OK | os.W_OK | (os.X_OK if path == db_path.parent else 0)):
            return (f"{path} belongs to uid {st.st_uid} (mode {st.st_mode & 0o777:o}) and this user (uid "
                    f"{os.getuid()}) cannot read and write it: `sudo chown -R $(id -u) {db_path.parent}`")
    return None


def database_integrity(db_path: Path, full: bool = False) -> DatabaseHealth:
    """SQLite's own check of the file (`quick_check`, or `integrity_check` when `full`), read-only,
    without creating the file or touching its write-ahead log's ownership."""
    if not db_path.exists():
        return DatabaseHealth(True)
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check(20)" if full else "PRAGMA quick_check(20)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:  # "file is not a database", "database disk image is malformed", ...
        rows = [str(e)]
    if rows == ["ok"]:
        return DatabaseHealth(True)
    return DatabaseHealth(False, rows[:5], recovery_advice(db_path))


@dataclass
class DiskSpace:
    path: str
    free_bytes: int
    total_bytes: int

    @property
    def full(self) -> bool:
        return self.free_bytes < DISK_FULL_BYTES

    @property
    def low(self) -> bool:
        return self.free_bytes < DISK_LOW_BYTES

    def as_dict(self) -> dict:
        return {"path": self.path, "free_bytes": self.free_bytes, "total_bytes": self.total_bytes,
                "full": self.full, "low": self.low}


def disk_space(path: Path) -> DiskSpace | None:
    """Free space where `path` lives, as an unprivileged process (the hooks) may use it."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return DiskSpace(str(path), st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)
