"""The on-disk journal: one file per captured event, written by `hooks/emit.sh`.

A record is `<payload bytes>` followed by the end marker `\\n\\x1e\\n`, in a file of its own
named `<pid>-<n>.ev`, created exclusively by the hook. The file's modification time is the
moment the hook finished writing, which is the event's time. A file without the end marker is
still being written (or its hook died: then it is quarantined once it is older than a grace
period). Ingest marks a record done in the same SQLite transaction as its rows and deletes the
file afterwards; a restart that finds a done file deletes it instead of ingesting it again.

Order: records are ingested by modification time, then by the hook's pid and counter as numbers.
The kernel stamps times from a coarse clock (a tick of a few milliseconds), so two events of one
session can share a time; a session's hooks run one after the other, each a new process, so the
later one has the higher pid (until pids wrap around, once in millions of processes). Names are
never compared as text: `10000-0.ev` sorts after `9999-0.ev`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

END_MARKER = b"\n\x1e\n"
SUFFIX = ".ev"


@dataclass(frozen=True, order=True)
class JournalFile:
    """A record file as listed: enough to order it and to recognise it again."""

    mtime_ns: int
    name: str
    size: int

    @property
    def received_at(self) -> float:
        return self.mtime_ns / 1e9


@dataclass(frozen=True)
class Record:
    file: JournalFile
    complete: bool
    payload: bytes | None  # None when the file was too large to read


def list_files(journal_dir: Path) -> list[JournalFile]:
    """Record files, oldest first (see the module's docstring for how order is decided)."""
    out = []
    try:
        entries = os.scandir(journal_dir)
    except FileNotFoundError:
        return []
    with entries:
        for e in entries:
            if not e.name.endswith(SUFFIX):
                continue
            try:
                st = e.stat()
            except FileNotFoundError:
                continue
            out.append(JournalFile(st.st_mtime_ns, e.name, st.st_size))
    out.sort(key=_order)
    return out


def _order(f: JournalFile) -> tuple:
    """Time, then the hook's pid and counter as numbers (see the module's docstring)."""
    pid, _, n = f.name[: -len(SUFFIX)].partition("-")
    if pid.isdigit() and n.isdigit():
        return f.mtime_ns, int(pid), int(n), f.name
    return f.mtime_ns, -1, -1, f.name


def read(journal_dir: Path | str, f: JournalFile, max_read_bytes: int) -> Record | None:
    """Read one record; None if it vanished meanwhile.

    The record's identity (size, mtime) is taken from the open file once its bytes are read, never
    from the listing: a hook may append its end marker between listing and reading, and a done-mark
    holding the listing's stale size would not recognise the file after a crash (a duplicate), nor
    would a stale size be a true measure of "too large to read"."""
    path = os.path.join(journal_dir, f.name)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return None
    with fh:
        st = os.fstat(fh.fileno())
        if st.st_size > max_read_bytes:
            fh.seek(max(0, st.st_size - len(END_MARKER)))
            return Record(JournalFile(st.st_mtime_ns, f.name, st.st_size), fh.read() == END_MARKER, None)
        data = fh.read()
        while True:  # the hook may still be appending: the identity is that of the bytes in hand
            st = os.fstat(fh.fileno())
            if st.st_size <= len(data):
                break
            data += fh.read()
    read_as = JournalFile(st.st_mtime_ns, f.name, st.st_size)
    if data.endswith(END_MARKER):
        return Record(read_as, True, data[: -len(END_MARKER)])
    return Record(read_as, False, data)


def backlog_bytes(journal_dir: Path) -> int:
    return sum(f.size for f in list_files(journal_dir))


def incomplete_count(journal_dir: Path) -> int:
    """Records without their end marker: being written, or cut short (a killed hook, a full disk)."""
    n = 0
    for f in list_files(journal_dir):
        try:
            with open(os.path.join(journal_dir, f.name), "rb") as fh:
                fh.seek(max(0, f.size - len(END_MARKER)))
                n += fh.read() != END_MARKER
        except FileNotFoundError:
            continue
    return n


def remove(journal_dir: Path | str, name: str) -> None:
    try:
        os.unlink(os.path.join(journal_dir, name))
    except FileNotFoundError:
        pass
