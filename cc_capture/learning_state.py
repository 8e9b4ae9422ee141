"""The learning scheduler's record and what `ccd status` says of learning, readable without the
scheduler: one row per decision in `schedule_decisions` (with the pid, log and exit of the
pipeline a `run` started), the latest pipeline, and which pipeline holds the pipeline lock.

The holder is read from the lock file `ccd pipeline run` writes ("pipeline ID (pid N)", then the
process's start time) and the process's liveness, never by taking the lock: a probe that took it,
even for an instant, could make a pipeline starting at that moment refuse to run. Pipelines record
themselves in the `pipelines` table, with their process (pid and start time) and a heartbeat; a
row left `running` whose process is gone, or whose heartbeat stopped, died (`reap_dead` marks it
failed with its last log lines; the next run resumes it). A pipeline command that died before
writing anything is known from the daemon's rows alone.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from cc_capture import store
from cc_capture.paths import Paths
from cc_capture.processes import running, suspended_s
from cc_capture.store import Database

KEEP_DECISIONS = 2000  # older waits are dropped; they repeat every check_interval_min
HEARTBEAT_S = 10.0  # a running pipeline writes its heartbeat this often
STALE_S = 120.0  # a heartbeat older than this: the pipeline's process is dead or frozen
LOG_TAIL_LINES = 20
_HOLDER = re.compile(r"pipeline (?P<pipeline_id>\S+) \(pid (?P<pid>\d+)\)(?:\nstarted (?P<started>.+))?")


@dataclass(frozen=True)
class Holder:
    pipeline_id: str
    pid: int
    started: str | None = None  # the process's start time (cc_capture.processes): a reused pid is not it

    def __str__(self) -> str:
        return f"pipeline {self.pipeline_id} (pid {self.pid})"

    def lock_text(self) -> str:
        """What the lock file says: this first line for people (and a busy `ccd pipeline run`), then the start."""
        return f"{self}\nstarted {self.started}\n" if self.started else f"{self}\n"


def holder(paths: Paths) -> Holder | None:
    """The pipeline running in this home now, or None."""
    try:
        text = paths.pipeline_lock.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    m = _HOLDER.search(text)
    if m is None or not running(int(m["pid"]), m["started"]):
        return None
    return Holder(m["pipeline_id"], int(m["pid"]), m["started"])


def log_tail(path: str | None, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except (OSError, TypeError):
        return ""


def heartbeat_age(row: dict[str, Any], now: float, suspended_now: float | None) -> float:
    """Seconds since a pipeline's last heartbeat, less the time the machine spent asleep since then
    (a pipeline does not beat while the laptop sleeps, and is not frozen for it)."""
    age = now - (row["heartbeat_at"] or row["started_at"])
    then = row.get("heartbeat_suspended_s")
    if then is not None and suspended_now is not None:
        age -= max(0.0, suspended_now - then)
    return age


def _alive(row: dict[str, Any], paths: Paths, now: float, suspended_now: float | None) -> bool:
    """A pipeline recorded as running still runs: its process exists and its heartbeat is fresh
    (a row written before heartbeats existed: it holds the pipeline lock)."""
    if row["pid"] is None:
        found = holder(paths)
        return found is not None and found.pipeline_id == row["pipeline_id"]
    return running(row["pid"], row["pid_start"]) and heartbeat_age(row, now, suspended_now) < STALE_S


def dead_pipelines(db: Database, paths: Paths, now: float | None = None,
                   suspended_now: float | None = None) -> list[dict[str, Any]]:
    """Pipelines recorded as running whose process died (or froze) without recording its end;
    `now` and `suspended_now` (processes.suspended_s) default to this moment's."""
    now = time.time() if now is None else now
    suspended_now = suspended_s() if suspended_now is None else suspended_now
    return [r for r in db.query("SELECT pipeline_id, pid, pid_start, heartbeat_at, heartbeat_suspended_s, started_at, "
                                "steps FROM pipelines WHERE status = 'running'")
            if not _alive(r, paths, now, suspended_now)]


def reap_dead(db: Database, paths: Paths, now: float | None = None) -> list[str]:
    """Mark each dead pipeline failed, with why and its last log lines (status `died`: the next
    `ccd pipeline run` resumes it from its last finished step); their ids."""
    now = time.time() if now is None else now
    reaped = []
    for row in dead_pipelines(db, paths, now):
        why = (f"the pipeline process (pid {row['pid']}) ended without recording its end"
               if row["pid"] is None or not running(row["pid"], row["pid_start"]) else
               f"the pipeline process (pid {row['pid']}) stopped its heartbeat at {store.iso(row['heartbeat_at'])}")
        started = db.execute("SELECT log_path FROM schedule_decisions WHERE action = 'run' AND pid = ? "
                             "ORDER BY id DESC LIMIT 1", [row["pid"]]).fetchone()
        tail = log_tail(started[0]) if started else ""
        error = why + (f"; its last log lines ({started[0]}):\n{tail}" if started else
                       " (it was run by hand: its output went to its terminal)")
        steps = json.loads(row["steps"])
        for step in steps:
            if step["status"] == "running":
                step.update(status="failed", ended_at=store.iso(now), detail=why)
        with store.transaction(db) as conn:
            marked = conn.execute("UPDATE pipelines SET status = 'died', outcome = 'failed', ended_at = ?, error = ?, "
                                  "steps = ? WHERE pipeline_id = ? AND status = 'running'",
                                  (now, error, json.dumps(steps), row["pipeline_id"])).rowcount
        if marked:
            reaped.append(row["pipeline_id"])
    return reaped


def record(db: Database, at: float, action: str, reasons: list[tuple[str, str]], next_check_at: float | None) -> int:
    """One decision: `action` run or wait, its reasons as (condition, message)."""
    text = json.dumps([{"condition": c, "message": m} for c, m in reasons])
    with store.transaction(db) as conn:
        cur = conn.execute("INSERT INTO schedule_decisions (at, action, reasons, next_check_at) VALUES (?, ?, ?, ?)",
                           (at, action, text, next_check_at))
        conn.execute("DELETE FROM schedule_decisions WHERE id <= ? AND action = 'wait'", (cur.lastrowid - KEEP_DECISIONS,))
        return cur.lastrowid


def record_start(db: Database, decision_id: int, pid: int, pid_start: str | None, log_path: str) -> None:
    with store.transaction(db) as conn:
        conn.execute("UPDATE schedule_decisions SET pid = ?, pid_start = ?, log_path = ? WHERE id = ?",
                     (pid, pid_start, log_path, decision_id))


def record_end(db: Database, decision_id: int, ended_at: float, exit_code: int | None,
               tail: str) -> None:
    with store.transaction(db) as conn:
        conn.execute("UPDATE schedule_decisions SET ended_at = ?, exit_code = ?, log_tail = ? WHERE id = ?",
                     (ended_at, exit_code, tail, decision_id))


def unfinished_runs(db: Database) -> list[dict[str, Any]]:
    """Runs the daemon started and never saw end (it was stopped or killed meanwhile)."""
    return list(db.query("SELECT id, pid, pid_start, log_path FROM schedule_decisions WHERE action = 'run' AND pid IS NOT NULL "
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
    recorded as running whose process is gone, or whose heartbeat stopped, died (`failed`, even
    before the daemon marks it; the next run resumes it)."""
    row = next(iter(db.query("SELECT pipeline_id, coalesce(outcome, status) AS outcome, ended_at, model_version, pid, "
                             "pid_start, heartbeat_at, heartbeat_suspended_s, started_at FROM pipelines "
                             "ORDER BY started_at DESC LIMIT 1")),
               None)
    if row:
        outcome = "failed" if row["outcome"] == "running" and not _alive(row, paths, time.time(), suspended_s()) else row["outcome"]
        return {"pipeline_id": row["pipeline_id"], "outcome": outcome, "ended_at": store.iso(row["ended_at"]),
                "model_version": row["model_version"]}
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
