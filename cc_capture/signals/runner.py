"""Compute and store signals: load a TraceView from the store, extract, vectorise, gate.

The daemon calls `compute_pending` after each ingest pass (traces queued in `dirty_traces`
once closed); `ccd signals recompute` calls `recompute` for an extractor upgrade or new gates.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import msgspec

from cc_capture.config import GateSettings
from cc_capture.signals import EXTRACTOR_VERSION
from cc_capture.signals.extract import EDIT_TOOLS, WEB_TOOLS, extract
from cc_capture.signals.gates import decide
from cc_capture.signals.model import CallView, TraceView
from cc_capture.signals.vector import vector
from cc_capture.store import Database, Origin, json_or_text, settle_origins, transaction

log = logging.getLogger("ccd.signals")


def load_view(db: Database, trace_id: str) -> TraceView | None:
    row = db.execute(
        "SELECT t.prompt, t.final_response, t.status, t.started_at, t.ended_at, t.session_id, t.seq, f.rating, "
        "s.origin FROM traces t LEFT JOIN feedback f USING (trace_id) LEFT JOIN sessions s USING (session_id) "
        "WHERE t.trace_id = ?",
        [trace_id],
    ).fetchone()
    if row is None:
        return None
    prompt, final, status, started, ended, session_id, seq, rating, origin = row
    web = ",".join("?" * len(WEB_TOOLS))
    calls = [
        CallView(name=r[0] or "", input=json_or_text(r[1]), output=json_or_text(r[2]), is_error=bool(r[3]), error=r[4],
                 reasoning=r[5] or "", agent_id=r[6], batch=r[7], status=r[8])
        for r in db.execute(
            # the extractor reads outputs only for the URLs web tools return: the others (often large) stay unread
            f"SELECT c.name, c.input, CASE WHEN c.name IN ({web}) THEN c.output END, c.is_error, c.error, r.text, "
            "c.agent_id, c.batch, c.status "
            "FROM tool_calls c LEFT JOIN reasoning r USING (tool_use_id) WHERE c.trace_id = ? ORDER BY c.seq",
            [*sorted(WEB_TOOLS), trace_id],
        )
    ]
    prior: dict[str, int] = {}
    marks = ",".join("?" * len(EDIT_TOOLS))
    for (path,) in db.execute(
        f"SELECT json_extract(c.input, '$.file_path') FROM tool_calls c JOIN traces t USING (trace_id) "
        f"WHERE t.session_id = ? AND t.seq < ? AND c.name IN ({marks})",
        [session_id, seq, *sorted(EDIT_TOOLS)],
    ):
        if path:
            prior[path] = prior.get(path, 0) + 1
    duration = (ended - started) if started is not None and ended is not None else None
    return TraceView(trace_id=trace_id, prompt=prompt or "", final_response=final or "", status=status,
                     calls=calls, duration_s=duration, feedback=rating, prior_session_edits=prior,
                     origin=origin or Origin.CLAUDE.value)


@dataclass
class ComputeResult:
    computed: int = 0
    qualifies: int = 0
    failed: int = 0

    def add(self, other: "ComputeResult") -> None:
        self.computed += other.computed
        self.qualifies += other.qualifies
        self.failed += other.failed


@dataclass(frozen=True)
class Derived:
    """One trace's signals row as computed, before it is stored: `signals` is None when the trace is
    gone, and `failed` when extraction raised (it was logged where it ran)."""

    trace_id: str
    signals: str | None = None
    vector: str | None = None
    qualifies: bool = False
    gate_reasons: str | None = None
    failed: bool = False


def derive(db: Database, trace_ids: Iterable[str], gates: GateSettings) -> list[Derived]:
    """Extract, vectorise and gate these traces, reading only: worker processes run it on their
    own connection while the importing process writes (`store_derived`)."""
    out = []
    for trace_id in trace_ids:
        try:
            view = load_view(db, trace_id)
            if view is None:
                out.append(Derived(trace_id))
                continue
            sig = extract(view)
            ok, reasons = decide(view, sig, gates)
            out.append(Derived(trace_id, msgspec.json.encode(sig).decode(), json.dumps(vector(view, sig)), ok,
                               json.dumps(reasons)))
        except Exception:  # a bug on one trace must not stop the others: log it, go on
            log.exception("signals failed for trace %s", trace_id)
            out.append(Derived(trace_id, failed=True))
    return out


def store_derived(conn, derived: Iterable[Derived], progress: Callable[[], None] | None = None) -> ComputeResult:
    """Store computed signals and take their traces off the queue, in the caller's transaction."""
    result = ComputeResult()
    for d in derived:
        if d.signals is not None:
            conn.execute(
                "INSERT OR REPLACE INTO signals (trace_id, extractor_version, computed_at, signals, vector,"
                " qualifies, gate_reasons) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (d.trace_id, EXTRACTOR_VERSION, time.time(), d.signals, d.vector, int(d.qualifies), d.gate_reasons))
            result.computed += 1
            result.qualifies += d.qualifies
        result.failed += d.failed
        conn.execute("DELETE FROM dirty_traces WHERE trace_id = ?", (d.trace_id,))
        if progress:
            progress()
    return result


def compute(db: Database, trace_ids: Iterable[str], gates: GateSettings,
            progress: Callable[[], None] | None = None) -> ComputeResult:
    """Extract, vectorise and gate these traces; one transaction per 200 traces."""
    result = ComputeResult()
    ids = list(trace_ids)
    for start in range(0, len(ids), 200):
        with transaction(db) as conn:
            chunk = ids[start : start + 200]
            settle_sessions(conn, chunk)
            result.add(store_derived(conn, derive(db, chunk, gates), progress))
    return result


def settle_sessions(conn, trace_ids: list[str]) -> None:
    """Before these traces are gated, their sessions' origin is settled (a session's model may have
    just arrived): call it in the writer's transaction before `derive`."""
    settle_origins(conn, _sessions_of(conn, trace_ids))


def _sessions_of(conn, trace_ids: list[str]) -> set[str]:
    marks = ",".join("?" * len(trace_ids))
    sql = f"SELECT DISTINCT session_id FROM traces WHERE trace_id IN ({marks})"
    return {r[0] for r in conn.execute(sql, trace_ids)}


def pending(db: Database, among: Iterable[str] | None = None) -> list[str]:
    """Queued traces that are closed (an open trace waits until it ends), or those of `among`."""
    sql = "SELECT d.trace_id FROM dirty_traces d JOIN traces t USING (trace_id) WHERE t.status != 'open'"
    if among is None:
        return [r[0] for r in db.execute(sql)]
    ids = list(among)
    return [r[0] for start in range(0, len(ids), 500) for r in db.execute(
        f"{sql} AND d.trace_id IN ({','.join('?' * len(ids[start : start + 500]))})", ids[start : start + 500])]


def compute_pending(db: Database, gates: GateSettings) -> ComputeResult:
    return compute(db, pending(db), gates)


def stale(db: Database, everything: bool = False) -> list[str]:
    """Closed traces whose signals come from an older extractor (or all closed traces)."""
    if everything:
        sql = "SELECT trace_id FROM traces WHERE status != 'open'"
        return [r[0] for r in db.execute(sql)]
    sql = ("SELECT t.trace_id FROM traces t LEFT JOIN signals s USING (trace_id) "
           "WHERE t.status != 'open' AND (s.trace_id IS NULL OR s.extractor_version < ?)")
    return [r[0] for r in db.execute(sql, [EXTRACTOR_VERSION])]
