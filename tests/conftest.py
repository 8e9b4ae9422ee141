import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from cc_capture import reads, records, store
from cc_capture.config import CaptureSettings, Paths

REPO = Path(__file__).resolve().parent.parent
EMITTER = REPO / "hooks" / "emit.sh"
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("OMP_NUM_THREADS", "1")


def shared_dir() -> Path:
    """The project's shared test data (../shared beside the checkout, or $CC_CAPTURE_SHARED)."""
    return Path(os.environ.get("CC_CAPTURE_SHARED", REPO.parent / "shared"))


@pytest.fixture
def shared() -> Path:
    d = shared_dir()
    if not (d / "payloads").is_dir():
        pytest.fail(f"shared test data not found at {d}; set CC_CAPTURE_SHARED")
    return d


@pytest.fixture
def cc_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "cch"
    monkeypatch.setenv("CC_CAPTURE_HOME", str(home))
    return home


@pytest.fixture
def paths(cc_home) -> Paths:
    return Paths(cc_home).ensure()


@pytest.fixture
def db(paths):
    d = store.connect(paths.db)
    yield d
    d.conn.close()


def emit(paths: Paths, payload: bytes | str | dict) -> subprocess.CompletedProcess:
    """Run the real hook emitter with one payload, as Claude Code would."""
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return subprocess.run(["/bin/sh", str(EMITTER), str(paths.home)], input=payload, capture_output=True, timeout=30)


def ingest_all(paths: Paths, settings: CaptureSettings | None = None):
    """What `ccd ingest` does (the same library call): one pass over the journal, its
    transcripts, then pending signals, under the home lock; returns the journal's PassResult."""
    from cc_capture.config import Settings
    from cc_capture.pipeline.ingest import ingest_once

    return ingest_once(paths, Settings(capture=settings or CaptureSettings())).journal


# The background-subagent session 42067652 as Claude Code fires it.
SESSION_42067652 = [
    "SessionStart_startup", "UserPromptSubmit",
    "PreToolUse_Bash", "PostToolUse_Bash", "PostToolBatch_single_Bash",
    "PreToolUse_parallel_Glob", "PreToolUse_parallel_Grep", "PostToolUse_parallel_Glob", "PostToolUse_parallel_Grep",
    "PostToolBatch_parallel_Glob_Grep",
    "PreToolUse_Bash_exit1", "PostToolUseFailure_Bash_exit1", "PostToolBatch_Bash_exit1",
    "PreToolUse_Read_missing", "PostToolUseFailure_Read_missing",
    "PreToolUse_Write_not_allowed", "PermissionRequest_Write", "PostToolBatch_Write_denied",
    "PreToolUse_Agent_background", "SubagentStart", "PostToolUse_Agent_background", "PostToolBatch_Agent_background",
    "PreToolUse_inside_subagent", "PostToolUse_inside_subagent", "PostToolBatch_inside_subagent",
    "Stop_with_running_background_task", "SubagentStop_background",
    "UserPromptSubmit_task_notification", "Stop", "SessionEnd",
]
TRACE = "a5432553-5623-4791-bb0f-a31532771193"
SESSION = "42067652-f236-40d4-9ddc-e0f17f556545"


def trace_json(db, trace_id: str) -> dict | None:
    """One trace in its `--json` form (what `ccd traces show --json` prints), read through the read model."""
    trace = reads.trace(db, trace_id)
    return None if trace is None else records.jsonable(trace)


def traces_json(db, limit: int = 20, session: str | None = None) -> list[dict]:
    """Trace summaries in their `--json` form (what `ccd traces list --json` prints)."""
    return records.jsonable(reads.trace_summaries(db, limit, session))


def replay(paths, shared, names):
    for name in names:
        r = emit(paths, (shared / "payloads" / f"{name}.json").read_bytes())
        assert r.returncode == 0


def ccd(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `ccd ARGS` as a user would (a process of its own, in this test's home), wide enough that
    tables are not wrapped; a failure shows what it printed."""
    p = subprocess.run([sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, COLUMNS="200"))
    if check and p.returncode != 0:
        raise AssertionError(f"ccd {' '.join(args)} failed ({p.returncode}): {p.stdout}\n{p.stderr}")
    return p


@contextmanager
def relocated_home(folder: Path) -> Iterator[Paths]:
    """CC_CAPTURE_HOME pointed at `folder` while a module's fixtures use it, restored afterwards
    (module-scoped fixtures cannot use monkeypatch)."""
    old = os.environ.get("CC_CAPTURE_HOME")
    os.environ["CC_CAPTURE_HOME"] = str(folder)
    try:
        yield Paths(folder).ensure()
    finally:
        if old is None:
            os.environ.pop("CC_CAPTURE_HOME", None)
        else:
            os.environ["CC_CAPTURE_HOME"] = old


def db_rows(paths: Paths, sql: str, params=()) -> list[tuple]:
    """Rows of one query, on a connection of its own (as another process would read them)."""
    db = store.connect(paths.db)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.conn.close()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
