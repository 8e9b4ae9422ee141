"""Compute and store signals: load traces (the read model) as TraceViews, extract, vectorise, gate.

The daemon calls `compute_pending` after each ingest pass (traces queued in `dirty_traces`
once closed); `ccd signals recompute` calls `recompute` for an extractor upgrade or new gates.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import msgspec

from cc_capture import reads
from cc_capture.signals import EXTRACTOR_VERSION
from cc_capture.signals.extract import EDIT_TOOLS, WEB_TOOLS, extract
from cc_capture.signals.gates import decide
from cc_capture.signals.model import TraceView
from cc_capture.signals.vector import vector
from cc_capture.store import Database, settle_origins, transaction

if TYPE_CHECKING:
    from cc_capture.signals.gates import Gates

log = logging.getLogger("ccd.signals")


def load_views(db: Database, trace_ids: Sequence[str]) -> list[TraceView]:
    """These traces as the extractor reads them: loaded together through the read model (the
    outputs of web tools only: the extractor reads no other, and they are the bulk of a trace),
    each with the files edited in the earlier traces of its session."""
    traces = reads.traces(db, trace_ids, outputs_of=WEB_TOOLS)
    prior = _prior_session_edits(db, [t.trace_id for t in traces])
    return [TraceView(t, prior[t.trace_id]) for t in traces]


def _prior_session_edits(db: Database, trace_ids: list[str]) -> dict[str, dict[str, int]]:
    """For each trace, how often each file was edited in the traces of its session before it."""
    out: dict[str, dict[str, int]] = {}
    for start in range(0, len(trace_ids), reads.CHUNK):
        chunk = trace_ids[start : start + reads.CHUNK]
        positions = db.execute(f"SELECT trace_id, session_id, seq FROM traces WHERE trace_id IN "
                               f"({','.join('?' * len(chunk))})", chunk).fetchall()
        sessions = sorted({session for _, session, _ in positions})
        edits: dict[str, list[tuple[int, str]]] = {}
        for session, seq, path in db.execute(
                "SELECT t.session_id, t.seq, json_extract(c.input, '$.file_path') FROM tool_calls c "
                f"JOIN traces t USING (trace_id) WHERE t.session_id IN ({','.join('?' * len(sessions))}) "
                f"AND c.name IN ({','.join('?' * len(EDIT_TOOLS))})", [*sessions, *sorted(EDIT_TOOLS)]):
            if path:
                edits.setdefault(session, []).append((seq, path))
        for trace_id, session, seq in positions:
            prior: dict[str, int] = {}
            for edit_seq, path in edits.get(session, ()):
                if edit_seq < seq:
                    prior[path] = prior.get(path, 0) + 1
            out[trace_id] = prior
    return out


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


def derive(db: Database, trace_ids: Iterable[str], gates: Gates) -> list[Derived]:
    """Extract, vectorise and gate these traces, reading only: worker processes run it on their
    own connection while the importing process writes (`store_derived`)."""
    ids = list(trace_ids)
    views = {v.trace_id: v for v in load_views(db, ids)}
    out = []
    for trace_id in ids:
        try:
            view = views.get(trace_id)
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


def compute(db: Database, trace_ids: Iterable[str], gates: Gates,
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


def compute_pending(db: Database, gates: Gates) -> ComputeResult:
    return compute(db, pending(db), gates)


def stale(db: Database, everything: bool = False) -> list[str]:
    """Closed traces whose signals come from an older extractor (or all closed traces)."""
    if everything:
        sql = "SELECT trace_id FROM traces WHERE status != 'open'"
        return [r[0] for r in db.execute(sql)]
    sql = ("SELECT t.trace_id FROM traces t LEFT JOIN signals s USING (trace_id) "
           "WHERE t.status != 'open' AND (s.trace_id IS NULL OR s.extractor_version < ?)")
    return [r[0] for r in db.execute(sql, [EXTRACTOR_VERSION])]
