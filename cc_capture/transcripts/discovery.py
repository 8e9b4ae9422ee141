"""Finding transcripts: which files make up each session (every layout), and what of them is
unread. No store writes; the importer and the bulk path both start from here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from cc_capture.transcripts.parser import parse_line


@dataclass
class SessionFiles:
    main: Path | None
    agents: list[Path] = field(default_factory=list)


def first_session_id(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                line = parse_line(raw.rstrip(b"\n"))
                if line.session_id:
                    return line.session_id
                if line.kind == "bad":
                    continue
    except OSError:
        return None
    return None


def session_files(main: Path) -> SessionFiles:
    """A 2.1.x session's files: its transcript and `<session>/subagents/agent-*.jsonl`."""
    return SessionFiles(main, sorted(f for f in (main.with_suffix("") / "subagents").glob("agent-*.jsonl")
                                     if f.is_file()))


def transcript_files(path: Path) -> Iterator[Path]:
    """The transcript files at or under this file or folder, in no particular order."""
    if path.is_dir():  # regular files only: not a folder named x.jsonl, nor a symlink loop
        yield from (f for f in path.rglob("*.jsonl") if f.is_file())
    elif path.suffix == ".jsonl" and path.is_file():
        yield path


def discover(paths: Iterable[Path]) -> dict[str, SessionFiles]:
    """Sessions under these files or folders: main transcript and subagent files, by session id."""
    sessions: dict[str, SessionFiles] = {}
    files = [f for p in paths for f in sorted(transcript_files(p))]
    for f in files:
        if f.parent.name == "subagents":  # 2.1.x: <session>/subagents/agent-<id>.jsonl
            sessions.setdefault(f.parent.parent.name, SessionFiles(None)).agents.append(f)
        elif f.name.startswith("agent-"):  # 2.0.x: flat agent files beside the session
            sid = first_session_id(f)
            if sid:
                sessions.setdefault(sid, SessionFiles(None)).agents.append(f)
        else:
            sessions.setdefault(f.stem, SessionFiles(None)).main = f
    return sessions


def session_dir(path: Path, agent_file: bool) -> Path:
    """The folder beside a session's transcript (`subagents/`, spilled `tool-results/`)."""
    return path.parent.parent if agent_file else path.with_suffix("")


def unread(files: SessionFiles, offsets: dict[str, int]) -> dict[Path, tuple[int, int, Path]]:
    """(start, stop, session folder) of what is new in each file of a session, by path."""
    found = {}
    for path, agent_file in ([(files.main, False)] if files.main else []) + [(a, True) for a in files.agents]:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            continue
        start = offsets.get(str(path), 0)
        start = 0 if size < start else start
        if size > start:
            found[path] = (start, size, session_dir(path, agent_file))
    return found
