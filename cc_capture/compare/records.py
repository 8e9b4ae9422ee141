"""Comparisons as rows (`comparisons`, `comparison_items`): what was replayed with which model, each
pair's scores and divergence, the summary; and the list that shows how scores moved model to model."""

from __future__ import annotations

import json
import time
from enum import Enum
from typing import Any

from cc_capture import store


class CompareStatus(str, Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ItemStatus(str, Enum):
    """How the local model's run of one prompt ended."""

    OK = "ok"  # it answered by itself
    ERROR = "error"  # Claude Code exited with an error (Ollama unreachable, the model missing, ...)
    TIMEOUT = "timeout"  # stopped at [compare] timeout_s
    MAX_TURNS = "max_turns"  # stopped at [compare] max_turns
    INCOMPLETE = "incomplete"  # it ended without an answer
    NOT_CAPTURED = "not_captured"  # no trace of it reached the store
    FAILED = "failed"  # the replay could not be set up (worktree, Claude Code missing)


def start(db: store.Database, compare_id: str, model: str, settings: dict[str, Any]) -> None:
    with store.transaction(db) as conn:
        conn.execute("INSERT INTO comparisons (compare_id, model, status, started_at, settings) VALUES (?, ?, ?, ?, ?)",
                     (compare_id, model, CompareStatus.RUNNING.value, time.time(), json.dumps(settings)))


def add_item(db: store.Database, compare_id: str, trace_id: str, local_session_id: str | None,
             local_trace_id: str | None, worktree: str | None, status: ItemStatus, scores: dict[str, Any],
             divergence: int | None, dpo_pair: bool, error: str | None) -> None:
    """One pair's row. A pair made from Claude's trace spends its session for evaluation in the same
    transaction: the pair is training data from now on, so the session leaves the eval split."""
    with store.transaction(db) as conn:
        conn.execute("INSERT OR REPLACE INTO comparison_items (compare_id, trace_id, local_session_id, local_trace_id, "
                     "worktree, status, scores, divergence, dpo_pair, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (compare_id, trace_id, local_session_id, local_trace_id, worktree, status.value,
                      json.dumps(scores), divergence, int(dpo_pair), error))
        if dpo_pair:
            (session_id,) = conn.execute("SELECT session_id FROM traces WHERE trace_id = ?", [trace_id]).fetchone()
            store.spend_session(conn, session_id, compare_id, trace_id)


def finish(db: store.Database, compare_id: str, status: CompareStatus, summary: dict[str, Any],
           error: str | None = None) -> None:
    with store.transaction(db) as conn:
        conn.execute("UPDATE comparisons SET status = ?, ended_at = ?, summary = ?, error = ? WHERE compare_id = ?",
                     (status.value, time.time(), json.dumps(summary), error, compare_id))


def items(db: store.Database, compare_id: str) -> list[dict[str, Any]]:
    cur = db.execute("SELECT trace_id, local_session_id, local_trace_id, status, scores, divergence, dpo_pair, error "
                     "FROM comparison_items WHERE compare_id = ? ORDER BY rowid", [compare_id])
    return [{"trace_id": r[0], "local_session_id": r[1], "local_trace_id": r[2], "status": r[3],
             "scores": json.loads(r[4]), "divergence": r[5], "dpo_pair": bool(r[6]), "error": r[7]} for r in cur]


def history(db: store.Database, limit: int = 20) -> list[dict[str, Any]]:
    """Past comparisons, newest first, each with its mean scores and their change since the
    comparison before it (of whatever model): how the scores moved model to model."""
    rows = db.execute("SELECT compare_id, model, status, started_at, ended_at, summary, "
                      "(SELECT count(*) FROM comparison_items i WHERE i.compare_id = c.compare_id), "
                      "(SELECT count(*) FROM comparison_items i WHERE i.compare_id = c.compare_id AND i.dpo_pair) "
                      "FROM comparisons c ORDER BY started_at").fetchall()
    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for compare_id, model, status, started, ended, summary, n_items, pairs in rows:
        means = {k: v.get("mean") for k, v in (json.loads(summary).get("scores") or {}).items()}
        change = None
        if previous is not None:
            change = {k: round(v - previous["means"][k], 4) for k, v in means.items()
                      if v is not None and previous["means"].get(k) is not None}
        entry = {"compare_id": compare_id, "model": model, "status": status, "started_at": store.iso(started),
                 "ended_at": store.iso(ended), "items": n_items, "dpo_pairs": pairs, "means": means,
                 "previous": None if previous is None else {"compare_id": previous["compare_id"],
                                                           "model": previous["model"]},
                 "change": change}
        out.append(entry)
        if means:
            previous = entry
    return list(reversed(out))[:limit]
