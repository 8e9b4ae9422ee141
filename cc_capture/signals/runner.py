"""Compute and store signals: load traces (the read model) as TraceViews, extract, vectorise, gate.

The daemon calls `compute_pending` after each ingest pass (traces queued in `dirty_traces`
once closed); `ccd signals recompute` calls `recompute` for an extractor upgrade or new gates.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import msgspec

from cc_capture import reads
from cc_capture.config import GateSettings
from cc_capture.signals import EXTRACTOR_VERSION
from cc_capture.signals.extract import EDIT_TOOLS, WEB_TOOLS, extract
from cc_capture.signals.gates import decide
from cc_capture.signals.model import TraceView
from cc_capture.signals.vector import vector
from cc_capture.store import Database, settle_origins, transaction

log = logging.getLogger("ccd.signals")


def load_views(db: Database, trace_ids: Sequence[str]) -> list[TraceView]:
    """These traces as the extractor reads them: loaded together through the read model (the
    outputs of web tools only: the extractor reads no other, and they are the bulk of a trace),
    each with the files edited in the earlier traces of its session."""
    traces = reads.traces(db, trace_ids, outputs_of=WEB_TOOLS)
    prior = _prior_session_edits(db, [t.trace_id for t in traces])
    return [TraceView(t, prior[t.trace_id]) for t in traces]


def load_view(db: Database, trace_id: str) -> TraceView | None:
    views = load_views(db, [trace_id])
    return views[0] if views else None


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


def compute(db: Database, trace_ids: Iterable[str], gates: GateSettings,
            progress: Callable[[], None] | None = None) -> ComputeResult:
    """Extract, vectorise and gate these traces; one transaction per 200 traces."""
    result = ComputeResult()
    ids = list(trace_ids)
    for start in range(0, len(ids), 200):
        with transaction(db) as conn:
            chunk = ids[start : start + 200]
            # a session's origin is settled before its traces are gated (its model may have just arrived)
            settle_origins(conn, _sessions_of(conn, chunk))
            views = {v.trace_id: v for v in load_views(db, chunk)}
            for trace_id in chunk:
                try:
                    view = views.get(trace_id)
                    if view is not None:
                        sig = extract(view)
                        ok, reasons = decide(view, sig, gates)
                        conn.execute(
                            "INSERT OR REPLACE INTO signals (trace_id, extractor_version, computed_at, signals, vector,"
                            " qualifies, gate_reasons) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (trace_id, EXTRACTOR_VERSION, time.time(), msgspec.json.encode(sig).decode(),
                             json.dumps(vector(view, sig)), int(ok), json.dumps(reasons)),
                        )
                        result.computed += 1
                        result.qualifies += ok
                except Exception:  # a bug on one trace must not stop the others: log it, go on
                    log.exception("signals failed for trace %s", trace_id)
                    result.failed += 1
                conn.execute("DELETE FROM dirty_traces WHERE trace_id = ?", (trace_id,))
                if progress:
                    progress()
    return result


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
