"""The learning scheduler's record and what `ccd status` says of learning, readable without the
scheduler: one row per decision in `schedule_decisions` (with the pid, log and exit of the
pipeline a `run` started), the latest pipeline, and which pipeline holds the pipeline lock.

The holder is read from the lock file `ccd pipeline run` writes ("pipeline ID (pid N)") and the
process's liveness, never by taking the lock: a probe that took it, even for an instant, could
make a pipeline starting at that moment refuse to run. Pipelines record themselves in the
`pipelines` table; a pipeline command that died before writing anything is known from the
daemon's rows alone.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from cc_capture import store
from cc_capture.paths import Paths
from cc_capture.store import Database

KEEP_DECISIONS = 2000  # older waits are dropped; they repeat every check_interval_min
_HOLDER = re.compile(r"pipeline (?P<pipeline_id>\S+) \(pid (?P<pid>\d+)\)")


@dataclass(frozen=True)
class Holder:
    pipeline_id: str
    pid: int

    def __str__(self) -> str:
        return f"pipeline {self.pipeline_id} (pid {self.pid})"


def alive(pid: int) -> bool:
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


def holder(paths: Paths) -> Holder | None:
    """The pipeline running in this home now, or None."""
    try:
        text = paths.pipeline_lock.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    m = _HOLDER.search(text)
    if m is None or not alive(int(m["pid"])):
        return None
    return Holder(m["pipeline_id"], int(m["pid"]))


def record(db: Database, at: float, action: str, reasons: list[tuple[str, str]], next_check_at: float | None) -> int:
    """One decision: `action` run or wait, its reasons as (condition, message)."""
    text = json.dumps([{"condition": c, "message": m} for c, m in reasons])
    with store.transaction(db) as conn:
        cur = conn.execute("INSERT INTO schedule_decisions (at, action, reasons, next_check_at) VALUES (?, ?, ?, ?)",
                           (at, action, text, next_check_at))
        conn.execute("DELETE FROM schedule_decisions WHERE id <= ? AND action = 'wait'", (cur.lastrowid - KEEP_DECISIONS,))
        return cur.lastrowid


def record_start(db: Database, decision_id: int, pid: int, log_path: str) -> None:
    with store.transaction(db) as conn:
        conn.execute("UPDATE schedule_decisions SET pid = ?, log_path = ? WHERE id = ?", (pid, log_path, decision_id))


def record_end(db: Database, decision_id: int, ended_at: float, exit_code: int | None,
               log_tail: str) -> None:
    with store.transaction(db) as conn:
        conn.execute("UPDATE schedule_decisions SET ended_at = ?, exit_code = ?, log_tail = ? WHERE id = ?",
                     (ended_at, exit_code, log_tail, decision_id))


def unfinished_runs(db: Database) -> list[dict[str, Any]]:
    """Runs the daemon started and never saw end (it was stopped or killed meanwhile)."""
    return list(db.query("SELECT id, pid, log_path FROM schedule_decisions WHERE action = 'run' AND pid IS NOT NULL "
                         "AND ended_at IS NULL"))


def _as_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"at": store.iso(row["at"]), "decision": row["action"],
            "reasons": [r["message"] for r in json.loads(row["reasons"])],
            "conditions": [r["condition"] for r in json.loads(row["reasons"])],
            "next_check_at": store.iso(row["next_check_at"]), "pid": row["pid"], "log_path": row["log_path"],
            "ended_at": store.iso(row["ended_at"]), "exit_code": row["exit_code"]}


def recent(db: Database, limit: int = 20) -> list[dict[str, Any]]:
    """The last decisions, newest first (the `ccd schedule --json` shape, README)."""
    return [_as_json(r) for r in db.query("SELECT * FROM schedule_decisions ORDER BY id DESC LIMIT ?", [limit])]


def last_pipeline(db: Database, paths: Paths) -> dict[str, Any] | None:
    """The latest pipeline: from `ccd pipeline run`'s own record, else from the daemon's. One
    recorded as running whose process is gone died (`failed`; the next run resumes it)."""
    row = db.execute("SELECT pipeline_id, coalesce(outcome, status), ended_at, model_version FROM pipelines "
                     "ORDER BY started_at DESC LIMIT 1").fetchone()
    if row:
        outcome = "failed" if row[1] == "running" and holder(paths) is None else row[1]
        return {"pipeline_id": row[0], "outcome": outcome, "ended_at": store.iso(row[2]), "model_version": row[3]}
    row = db.execute("SELECT ended_at, exit_code FROM schedule_decisions WHERE action = 'run' ORDER BY at DESC "
                     "LIMIT 1").fetchone()
    if row is None:
        return None
    outcome = "running" if row[0] is None else ("finished" if row[1] == 0 else "failed")
    return {"pipeline_id": None, "outcome": outcome, "ended_at": store.iso(row[0]), "model_version": None}


def learning_status(db: Database, paths: Paths, daemon_running: bool) -> dict[str, Any]:
    """`ccd status`'s answer to "when does it learn next, and why not now?" (`learning` in --json,
    README), from the daemon's last check (so `ccd status` needs no settings, nor pydantic)."""
    row = next(iter(db.query("SELECT * FROM schedule_decisions ORDER BY id DESC LIMIT 1")), None)
    last = _as_json(row) if row else None
    return {
        "enabled": last["conditions"] != ["enabled"] if last else None,
        "next_check_at": last["next_check_at"] if last and daemon_running else None,
        "decided_at": last["at"] if last else None,
        "decision": last["decision"] if last else None,
        "waiting_for": last["reasons"] if last and last["decision"] == "wait" else [],
        "last_pipeline": last_pipeline(db, paths),
    }


def pipeline_logs(db: Database, pipeline_id: str | None = None) -> list[str]:
    """The log files of the pipeline processes the daemon started: of `pipeline_id` (every start
    between its start and end: a resumed pipeline has one per process), else of the latest. A
    pipeline run by hand wrote to its terminal and has none."""
    if pipeline_id is None:
        row = db.execute("SELECT log_path FROM schedule_decisions WHERE action = 'run' AND log_path IS NOT NULL "
                         "ORDER BY id DESC LIMIT 1").fetchone()
        return [row[0]] if row else []
    span = db.execute("SELECT started_at, ended_at FROM pipelines WHERE pipeline_id = ?", [pipeline_id]).fetchone()
    if span is None:
        raise KeyError(pipeline_id)
    # the process that created the pipeline row started just before it; later ones resumed it
    return [r[0] for r in db.execute(
        "SELECT log_path FROM schedule_decisions WHERE action = 'run' AND log_path IS NOT NULL AND at >= ? - 60 "
        "AND at <= coalesce(?, 1e18) ORDER BY id", [span[0], span[1]])]
