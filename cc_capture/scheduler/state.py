"""What the scheduler's decision needs from the store: qualifying traces since the data snapshot of
the last pipeline (the newest capture its dataset held), its start, the last failure and whether
data came since, the last hook event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cc_capture import store
from cc_capture.scheduler.decide import StoreState
from cc_capture.store import Database

if TYPE_CHECKING:
    from cc_capture.config import LearningSettings


def qualifying_since(db: Database, since: float | None, include_synthetic: bool) -> int:
    """Qualifying traces that ended after `since` (all of them when None); the local model's never count."""
    sql = ("SELECT count(*) FROM signals g JOIN traces t USING (trace_id) WHERE g.qualifies = 1 "
           "AND coalesce(t.ended_at, t.started_at) > ?" + ("" if include_synthetic else " AND t.synthetic = 0")
           + f" AND {store.NOT_LOCAL}")
    return db.execute(sql, [since if since is not None else float("-inf")]).fetchone()[0]


def _last_failure(db: Database) -> tuple[float, float] | None:
    """(started_at, failed_at) of the latest failed pipeline, from either record."""
    failures = []
    row = db.execute("SELECT started_at, coalesce(ended_at, started_at), outcome FROM pipelines "
                     "ORDER BY started_at DESC LIMIT 1").fetchone()
    if row and row[2] == "failed":
        failures.append((row[0], row[1]))
    row = db.execute("SELECT at, ended_at, exit_code FROM schedule_decisions WHERE action = 'run' "
                     "ORDER BY at DESC LIMIT 1").fetchone()
    if row and row[1] is not None and row[2] != 0:
        # An exit the daemon did not see (None: it ended while the daemon was down, or was adopted)
        # is a failure unless the pipeline recorded its own end after the start.
        finished = row[2] is None and db.execute(
            "SELECT count(*) FROM pipelines WHERE started_at >= ? AND outcome IN ('promoted', 'rejected', "
            "'skipped')", [row[0]]).fetchone()[0]
        if not finished:
            failures.append((row[0], row[1]))
    return max(failures, key=lambda f: f[1]) if failures else None


def data_snapshot(db: Database) -> float | None:
    """The newest capture time in the dataset of the latest pipeline that built one (None: none did,
    so every qualifying trace is new)."""
    row = db.execute("SELECT json_extract(state, '$.captured_until') FROM pipelines WHERE "
                     "json_extract(state, '$.captured_until') IS NOT NULL ORDER BY started_at DESC LIMIT 1").fetchone()
    return row[0] if row else None


def store_state(db: Database, learning: LearningSettings, running: str | None) -> StoreState:
    starts = [db.execute("SELECT max(at) FROM schedule_decisions WHERE action = 'run'").fetchone()[0],
              db.execute("SELECT max(started_at) FROM pipelines").fetchone()[0]]
    last_started = max((s for s in starts if s is not None), default=None)
    failure = _last_failure(db)
    return StoreState(
        new_traces=qualifying_since(db, data_snapshot(db), learning.include_synthetic),
        last_started_at=last_started,
        last_failed_at=failure[1] if failure else None,
        traces_since_failure=qualifying_since(db, failure[0], learning.include_synthetic) if failure else 0,
        last_event_at=store.last_event_at(db),
        running=running,
    )
