"""Loading the read model (`cc_capture.records`) from the store: traces with their tool calls and
subagents, trace listings and search, training runs, dataset manifests.

Every reader of traces (the CLI, `ccd browse`, datasets, signals) loads them here. Many traces
load a chunk at a time, six queries for up to `CHUNK` traces, never several queries per trace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Collection, Sequence

import msgspec

from cc_capture import store
from cc_capture.records import (
    DatasetManifest, Feedback, Instant, Phase, Run, RunStatus, SearchHit, Subagent, ToolCall, Trace, TraceSummary,
    Usage,
)
from cc_capture.store import Database, Origin, json_or_text

CHUNK = 500  # traces a query asks for at once (SQLite allows 32,766 parameters)

# A trace's summary columns (`t` is its traces row); `ccd browse`'s canned queries select them too.
TRACE_COLUMNS = """
    t.trace_id, t.session_id, t.prompt, t.started_at, t.ended_at, t.status, t.final_response, t.error,
    (SELECT origin FROM sessions s WHERE s.session_id = t.session_id) AS origin,
    (SELECT json_group_array(name) FROM (SELECT name FROM tool_calls c
        WHERE c.trace_id = t.trace_id AND c.agent_id IS NULL ORDER BY c.seq)) AS tool_sequence,
    (SELECT count(*) FROM tool_calls c WHERE c.trace_id = t.trace_id) AS n_tool_calls,
    (SELECT qualifies FROM signals g WHERE g.trace_id = t.trace_id) AS qualifies
"""


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _summary(row: tuple, cls: type[TraceSummary] = TraceSummary, *extra: Any) -> Any:
    trace_id, session_id, prompt, started, ended, status, final, error, origin, sequence, n_calls, qualifies = row[:12]
    return cls(trace_id, session_id, prompt, Instant.of(started), Instant.of(ended), status,
               json.loads(sequence or "[]"), n_calls, final, error, _flag(qualifies), _origin(origin), *extra)


def _origin(value: str | None) -> Origin:
    return Origin(value or Origin.CLAUDE.value)


def trace_summaries(db: Database, limit: int = 20, session: str | None = None) -> list[TraceSummary]:
    """Traces, newest first; `session` may be a full id or a unique prefix."""
    where, params = "", []
    if session:
        where = "WHERE t.session_id LIKE ? ESCAPE '\\'"
        params.append(store.like_prefix(session))
    sql = f"SELECT {TRACE_COLUMNS} FROM traces t {where} ORDER BY t.started_at DESC, t.seq DESC LIMIT ?"
    return [_summary(r) for r in db.execute(sql, [*params, limit])]


def search(db: Database, query: str, limit: int = 20) -> list[SearchHit]:
    """Full-text search over prompts and final answers (every word, ANDed)."""
    terms = store.fts_query(query)
    if not terms:
        return []
    sql = f"""
        SELECT {TRACE_COLUMNS}, snippet(traces_fts, -1, '[', ']', '…', 12) AS snippet
        FROM traces_fts JOIN traces t ON t.rowid = traces_fts.rowid
        WHERE traces_fts MATCH ? ORDER BY rank LIMIT ?
    """
    return [_summary(r, SearchHit, r[12]) for r in db.execute(sql, [terms, limit])]


def trace(db: Database, trace_id: str) -> Trace | None:
    found = traces(db, [trace_id])
    return found[0] if found else None


def traces(db: Database, trace_ids: Sequence[str], outputs_of: Collection[str] | None = None) -> list[Trace]:
    """These traces, in the order asked (ids that match none are left out). `outputs_of`: load the
    outputs of these tools only, the others' left null (the signal extractor reads web tools'
    outputs alone, and the others are the bulk of a trace)."""
    found: dict[str, Trace] = {}
    ids = list(dict.fromkeys(trace_ids))
    for start in range(0, len(ids), CHUNK):
        found |= _chunk(db, ids[start : start + CHUNK], outputs_of)
    return [found[t] for t in trace_ids if t in found]


def _chunk(db: Database, ids: list[str], outputs_of: Collection[str] | None) -> dict[str, Trace]:
    marks = ",".join("?" * len(ids))
    output, output_params = "c.output", []
    if outputs_of is not None:
        output, output_params = f"CASE WHEN c.name IN ({','.join('?' * len(outputs_of))}) THEN c.output END", \
            sorted(outputs_of)
    calls: dict[str, list[ToolCall]] = {}
    for (trace_id, tool_use_id, name, input_, output_, is_error, error, status, reasoning, agent_id, parent, batch,
         started, duration, source) in db.execute(
            f"""SELECT c.trace_id, c.tool_use_id, c.name, c.input, {output}, c.is_error, c.error, c.status, r.text,
                       c.agent_id, s.parent_tool_use_id, c.batch, c.started_at, c.duration_ms, c.source
                FROM tool_calls c
                LEFT JOIN reasoning r ON r.tool_use_id = c.tool_use_id
                LEFT JOIN subagents s ON s.agent_id = c.agent_id
                WHERE c.trace_id IN ({marks}) ORDER BY c.trace_id, c.seq""", [*output_params, *ids]):
        calls.setdefault(trace_id, []).append(ToolCall(
            tool_use_id, name, json_or_text(input_), json_or_text(output_), bool(is_error), error, status, reasoning,
            agent_id, parent, batch, Instant.of(started), duration, source))
    subagents: dict[str, list[Subagent]] = {}
    for trace_id, agent_id, agent_type, parent, background, started, ended, final in db.execute(
            "SELECT trace_id, agent_id, agent_type, parent_tool_use_id, background, started_at, ended_at, "
            f"final_response FROM subagents WHERE trace_id IN ({marks}) ORDER BY trace_id, started_at, rowid", ids):
        subagents.setdefault(trace_id, []).append(Subagent(
            agent_id, agent_type, parent, _flag(background), Instant.of(started), Instant.of(ended), final))
    signals = {r[0]: r[1:] for r in db.execute(
        "SELECT trace_id, signals, vector, gate_reasons, extractor_version, qualifies FROM signals "
        f"WHERE trace_id IN ({marks})", ids)}
    usage = {r[0]: Usage(*r[1:]) for r in db.execute(
        "SELECT trace_id, count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), "
        f"sum(cache_creation_tokens) FROM message_usage WHERE trace_id IN ({marks}) GROUP BY trace_id", ids)}
    feedback = {r[0]: Feedback(r[1], r[2], Instant.of(r[3])) for r in db.execute(
        f"SELECT trace_id, rating, note, rated_at FROM feedback WHERE trace_id IN ({marks})", ids)}
    out = {}
    for (trace_id, session_id, prompt, started, ended, status, final, error, source, model, synthetic,
         origin) in db.execute(
            "SELECT trace_id, session_id, prompt, started_at, ended_at, status, final_response, error, source, model, "
            "synthetic, (SELECT origin FROM sessions s WHERE s.session_id = t.session_id) "
            f"FROM traces t WHERE trace_id IN ({marks})", ids):
        own = calls.get(trace_id, [])
        sig = signals.get(trace_id)
        out[trace_id] = Trace(
            trace_id, session_id, prompt, Instant.of(started), Instant.of(ended), status,
            [c.name for c in own if c.agent_id is None], len(own), final, error, _flag(sig[4]) if sig else None,
            _origin(origin), own, subagents.get(trace_id, []),
            json.loads(sig[0]) if sig else None, json.loads(sig[1]) if sig else None,
            json.loads(sig[2]) if sig else [], sig[3] if sig else None,
            source, model, bool(synthetic), usage.get(trace_id), feedback.get(trace_id))
    return out


# ---------------------------------------------------------------- runs and dataset manifests

def _run(row: dict[str, Any]) -> Run:
    manifest = row["dataset_manifest"]
    return Run(
        run_id=row["run_id"], phase=Phase(row["phase"]), status=RunStatus(row["status"]),
        created_at=Instant(row["created_at"]), started_at=Instant.of(row["started_at"]),
        ended_at=Instant.of(row["ended_at"]), pid=row["pid"],
        pid_start=row["pid_start"], backend=row["backend"],
        config=json.loads(row["config"]), dataset_path=row["dataset_path"],
        dataset_manifest=None if manifest is None else msgspec.json.decode(manifest, type=DatasetManifest | None),
        metrics=json.loads(row["metrics"]), artifacts=json.loads(row["artifacts"]), error=row["error"],
        log_path=row["log_path"])


def run(db: Database, ref: str) -> Run | None:
    """The run with this id, or the one run whose id starts with it."""
    rows = list(db.query("SELECT * FROM runs WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\' LIMIT 2",
                         [ref, store.like_prefix(ref)]))
    return _run(rows[0]) if len(rows) == 1 else None


def runs(db: Database, limit: int = 20) -> list[Run]:
    """Runs, newest first."""
    return [_run(r) for r in db.query("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", [limit])]


def latest_completed_run(db: Database, phase: Phase) -> Run | None:
    rows = list(db.query("SELECT * FROM runs WHERE phase = ? AND status = ? ORDER BY created_at DESC LIMIT 1",
                         [Phase(phase).value, RunStatus.COMPLETED.value]))
    return _run(rows[0]) if rows else None


def manifest(dataset: Path) -> DatasetManifest:
    """The manifest of a dataset folder from `ccd dataset build`."""
    return msgspec.json.decode((dataset / "manifest.json").read_bytes(), type=DatasetManifest)
