"""What the scheduler reads from the store, and its own record: one row per decision in
`schedule_decisions`, with the pid, log and exit of the pipeline a `run` started.

Pipelines themselves are recorded by `ccd pipeline run` in the `pipelines` table; this module
reads that table when it exists, and falls back on its own rows (a pipeline command that died
before writing anything still counts as a failure).
"""

from __future__ import annotations

import fcntl
import json
import os
from typing import TYPE_CHECKING, Any

from cc_capture import store
from cc_capture.paths import Paths
from cc_capture.schedule.decide import Action, Decision, StoreState
from cc_capture.store import Database

if TYPE_CHECKING:  # `ccd status` reads this module without loading pydantic
    from cc_capture.config import LearningSettings

KEEP_DECISIONS = 2000  # older rows are dropped; waits repeat every check_interval_min


def lock_holder(paths: Paths) -> str | None:
    """Who holds the pipeline lock (a `ccd pipeline run`, by hand or by the daemon), or None. The
    probe takes the lock for an instant only when it is free."""
    try:
        fd = os.open(paths.pipeline_lock, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return fh.read().strip() or "a pipeline"
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None


def _has_pipelines(db: Database) -> bool:
    """Whether `ccd pipeline run`'s own record exists in this store (a later migration adds it)."""
    return db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'pipelines'").fetchone()[0] > 0


def qualifying_since(db: Database, since: float | None, include_synthetic: bool) -> int:
    """Qualifying traces that ended after `since` (all of them when None)."""
    sql = ("SELECT count(*) FROM signals g JOIN traces t USING (trace_id) WHERE g.qualifies = 1 "
           "AND coalesce(t.ended_at, t.started_at) > ?" + ("" if include_synthetic else " AND t.synthetic = 0"))
    return db.execute(sql, [since if since is not None else float("-inf")]).fetchone()[0]


def _last_failure(db: Database) -> tuple[float, float] | None:
    """(started_at, failed_at) of the latest failed pipeline, from either record."""
    failures = []
    if _has_pipelines(db):
        row = db.execute("SELECT started_at, coalesce(ended_at, started_at), outcome FROM pipelines "
                         "ORDER BY started_at DESC LIMIT 1").fetchone()
        if row and row[2] == "failed":
            failures.append((row[0], row[1]))
    row = db.execute("SELECT at, ended_at, exit_code FROM schedule_decisions WHERE action = 'run' "
                     "ORDER BY at DESC LIMIT 1").fetchone()
    if row and row[1] is not None and row[2] != 0:
        # An exit the daemon did not see (None: it ended while the daemon was down, or was adopted)
        # is a failure unless the pipeline recorded its own end after the start.
        finished = row[2] is None and _has_pipelines(db) and db.execute(
            "SELECT count(*) FROM pipelines WHERE started_at >= ? AND outcome IN ('promoted', 'rejected', "
            "'skipped')", [row[0]]).fetchone()[0]
        if not finished:
            failures.append((row[0], row[1]))
    return max(failures, key=lambda f: f[1]) if failures else None


def store_state(db: Database, learning: LearningSettings, running: str | None) -> StoreState:
    starts = [db.execute("SELECT max(at) FROM schedule_decisions WHERE action = 'run'").fetchone()[0]]
    if _has_pipelines(db):
        starts.append(db.execute("SELECT max(started_at) FROM pipelines").fetchone()[0])
    last_started = max((s for s in starts if s is not None), default=None)
    failure = _last_failure(db)
    return StoreState(
        new_traces=qualifying_since(db, last_started, learning.include_synthetic),
        last_started_at=last_started,
        last_failed_at=failure[1] if failure else None,
        traces_since_failure=qualifying_since(db, failure[0], learning.include_synthetic) if failure else 0,
        last_event_at=store.last_event_at(db),
        running=running,
    )


def record(db: Database, at: float, decision: Decision, next_check_at: float | None) -> int:
    reasons = json.dumps([{"condition": r.condition, "message": r.message} for r in decision.reasons])
    with store.transaction(db) as conn:
        cur = conn.execute("INSERT INTO schedule_decisions (at, action, reasons, next_check_at) VALUES (?, ?, ?, ?)",
                           (at, decision.action.value, reasons, next_check_at))
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


def last_pipeline(db: Database) -> dict[str, Any] | None:
    """The latest pipeline: from `ccd pipeline run`'s own record, else from the daemon's."""
    if _has_pipelines(db):
        row = db.execute("SELECT pipeline_id, coalesce(outcome, status), ended_at, model_version FROM pipelines "
                         "ORDER BY started_at DESC LIMIT 1").fetchone()
        if row:
            return {"pipeline_id": row[0], "outcome": row[1], "ended_at": store.iso(row[2]), "model_version": row[3]}
    row = db.execute("SELECT ended_at, exit_code FROM schedule_decisions WHERE action = 'run' ORDER BY at DESC "
                     "LIMIT 1").fetchone()
    if row is None:
        return None
    outcome = "running" if row[0] is None else ("finished" if row[1] == 0 else "failed")
    return {"pipeline_id": None, "outcome": outcome, "ended_at": store.iso(row[0]), "model_version": None}


def learning_status(db: Database, daemon_running: bool) -> dict[str, Any]:
    """`ccd status`'s answer to "when does it learn next, and why not now?" (`learning` in --json,
    README), from the daemon's last check (so `ccd status` needs no settings, nor pydantic)."""
    row = next(iter(db.query("SELECT * FROM schedule_decisions ORDER BY id DESC LIMIT 1")), None)
    last = _as_json(row) if row else None
    return {
        "enabled": last["conditions"] != ["enabled"] if last else None,
        "next_check_at": last["next_check_at"] if last and daemon_running else None,
        "decided_at": last["at"] if last else None,
        "decision": last["decision"] if last else None,
        "waiting_for": last["reasons"] if last and last["decision"] == Action.WAIT.value else [],
        "last_pipeline": last_pipeline(db),
    }
