"""Where hook data and transcript data meet: every statement that creates a session, trace, tool
call or subagent, or decides which source wins, so the policy is read (and changed) in one place.
Live capture (`ingest/assemble.py`), the transcript importer (`transcripts/importer.py`) and the
synthetic traces of `datasets/bootstrap.py` all write through it.

The policy:
- Rows are keyed alike by both sources (a trace by its prompt id, a call by its tool_use_id, a
  subagent by its agent id), so a session seen by both stays one session.
- `source` says who saw a row: `hooks`, `transcript`, `both` (the second source to see a row
  turns it into `both`), or `synthetic` (bootstrap; never merged with anything).
- Hooks win on what they observe: timing, status and outcome of calls, a trace's status and final
  answer (Stop), the prompt's text, the Agent call's definitive link to its subagent. The
  transcript fills what hooks lack (the text before each call, model, usage, calls that fired no
  hook) and settles a trace or a call only where hooks did not.
- A trace whose rows change is queued for its signals (`store.mark_dirty`).

Transcript-side rows are undone by `forget_transcript_side` (a re-import after a redaction rules
change): rows both sources had go back to the hooks'.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Container, Iterable

from cc_capture import store

# ------------------------------------------------------------------ sessions


def session_from_hooks(conn: sqlite3.Connection, session_id: str, cwd: str | None, transcript_path: str | None,
                       permission_mode: str | None, ts: float) -> None:
    """A hook event's session: its values win; the session spans every event's time."""
    conn.execute(
        """
        INSERT INTO sessions (session_id, cwd, transcript_path, permission_mode, started_at, last_event_at)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(session_id) DO UPDATE SET
            cwd = coalesce(excluded.cwd, cwd),
            transcript_path = coalesce(excluded.transcript_path, transcript_path),
            permission_mode = coalesce(excluded.permission_mode, permission_mode),
            started_at = min(coalesce(started_at, excluded.started_at), excluded.started_at),
            last_event_at = max(coalesce(last_event_at, 0), excluded.last_event_at)
        """,
        (session_id, cwd, transcript_path, permission_mode, ts, ts),
    )


def session_from_transcript(conn: sqlite3.Connection, session_id: str, cwd: str | None,
                            transcript_path: str | None, ts: float | None, git_branch: str | None) -> None:
    """A transcript's session: fills only what the hooks did not record."""
    conn.execute(
        "INSERT INTO sessions (session_id, cwd, transcript_path, started_at, last_event_at, git_branch) "
        "VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(session_id) DO UPDATE SET cwd = coalesce(cwd, excluded.cwd), "
        "transcript_path = coalesce(transcript_path, excluded.transcript_path), "
        "git_branch = coalesce(git_branch, excluded.git_branch)",
        (session_id, cwd, transcript_path, ts, ts, git_branch))


def model_from_transcript(conn: sqlite3.Connection, trace_id: str, session_id: str | None, model: str) -> None:
    """The model that wrote a trace's messages (hooks know only the session's model at its start)."""
    conn.execute("UPDATE traces SET model = ? WHERE trace_id = ?", (model, trace_id))
    conn.execute("UPDATE sessions SET model = ? WHERE session_id = ?", (model, session_id))


# ------------------------------------------------------------------ traces


def trace_from_hooks(conn: sqlite3.Connection, trace_id: str, session_id: str, prompt_id: str | None,
                     ts: float) -> None:
    """A trace a hook event belongs to: created if new (next in its session), `both` if the
    transcript had it; queued for its signals."""
    store.mark_dirty(conn, [trace_id])
    conn.execute("UPDATE traces SET source = 'both' WHERE trace_id = ? AND source = 'transcript'", (trace_id,))
    conn.execute(
        """
        INSERT INTO traces (trace_id, session_id, prompt_id, seq, started_at)
        VALUES (?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM traces WHERE session_id = ?), ?)
        ON CONFLICT(trace_id) DO NOTHING
        """,
        (trace_id, session_id, prompt_id, session_id, ts),
    )


def prompt_from_hooks(conn: sqlite3.Connection, trace_id: str, prompt: str, ts: float) -> None:
    """The prompt as UserPromptSubmit gave it wins over the transcript's line."""
    conn.execute("UPDATE traces SET prompt = ?, started_at = min(coalesce(started_at, ?), ?) WHERE trace_id = ?",
                 (prompt, ts, ts, trace_id))


def hooks_trace_of_prompt(conn: sqlite3.Connection, session_id: str | None, prompt: str) -> str | None:
    """A transcript prompt with no prompt id (older Claude Code) joins the first hook-captured trace
    of its session with the same (redacted) prompt that no transcript prompt has joined yet."""
    row = conn.execute(
        "SELECT trace_id FROM traces t WHERE session_id = ? AND prompt = ? AND source = 'hooks' "
        "AND NOT EXISTS (SELECT 1 FROM transcript_prompts p WHERE p.trace_id = t.trace_id) "
        "ORDER BY seq LIMIT 1",
        (session_id, prompt)).fetchone()
    return row[0] if row else None


def trace_from_transcript(conn: sqlite3.Connection, trace_id: str, session_id: str | None, prompt_id: str | None,
                          prompt: str, ts: float | None) -> bool:
    """A transcript's prompt: a new trace (True), or hooks' trace of it turned `both` (False)."""
    cur = conn.execute(
        "INSERT INTO traces (trace_id, session_id, prompt_id, seq, prompt, started_at, source) "
        "VALUES (?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM traces WHERE session_id = ?), ?, ?, 'transcript') "
        "ON CONFLICT(trace_id) DO NOTHING", (trace_id, session_id, prompt_id, session_id, prompt, ts))
    if cur.rowcount:
        return True
    conn.execute("UPDATE traces SET source = 'both' WHERE trace_id = ? AND source = 'hooks'", (trace_id,))
    return False


def settle_trace_from_transcript(conn: sqlite3.Connection, trace_id: str, status: str, final_response: str | None,
                                 ended_at: float | None) -> None:
    """Status, final answer and end of a trace only the transcript saw: hooks' traces keep their Stop."""
    conn.execute(
        "UPDATE traces SET status = ?, final_response = ?, ended_at = ? WHERE trace_id = ? AND source = 'transcript'",
        (status, final_response, ended_at, trace_id))


# ------------------------------------------------------------------ tool calls


def call_from_hooks(conn: sqlite3.Connection, tool_use_id: str, trace_id: str, session_id: str | None,
                    name: str | None, input_json: str | None, agent_id: str | None, ts: float) -> None:
    """A call at a hook's first sight of it (next in its trace), or what it lacks filled in; a
    call the transcript had becomes `both`."""
    conn.execute(
        """
        INSERT INTO tool_calls (tool_use_id, trace_id, session_id, seq, name, input, agent_id, started_at)
        VALUES (?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM tool_calls WHERE trace_id = ?), ?, ?, ?, ?)
        ON CONFLICT(tool_use_id) DO UPDATE SET
            name = coalesce(name, excluded.name),
            input = coalesce(input, excluded.input),
            agent_id = coalesce(agent_id, excluded.agent_id),
            source = CASE source WHEN 'transcript' THEN 'both' ELSE source END
        """,
        (tool_use_id, trace_id, session_id, trace_id, name, input_json, agent_id, ts),
    )


@dataclass
class TranscriptCall:
    """A call only the transcript has (no hook reported it), as it is stored."""

    tool_use_id: str
    trace_id: str
    session_id: str | None
    seq: int
    name: str | None
    input_json: str | None
    agent_id: str | None
    batch: int | None
    started_at: float | None
    status: str
    output: str | None
    is_error: int
    error: str | None


def calls_from_transcript(conn: sqlite3.Connection, calls: Iterable[TranscriptCall]) -> None:
    conn.executemany(
        "INSERT INTO tool_calls (tool_use_id, trace_id, session_id, seq, name, input, agent_id, batch, started_at, "
        "status, output, is_error, error, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'transcript')",
        [(c.tool_use_id, c.trace_id, c.session_id, c.seq, c.name, c.input_json, c.agent_id, c.batch, c.started_at,
          c.status, c.output, c.is_error, c.error) for c in calls])


def calls_in_written_order(conn: sqlite3.Connection, ids: list[str], seqs: dict[str, int],
                           unwritten: Container[str] = ()) -> dict[str, int]:
    """The calls of one model message (`ids`, in the order the model wrote them) take the places
    (`seqs`, each call's current one) they hold between them in that order: hooks of parallel calls
    fire and finish in any order, the message (a PostToolBatch hook, or the transcript) does not.
    Returns the calls whose place changed, with their new one; `unwritten` calls (not stored yet)
    are only returned."""
    moved = {i: seq for i, seq in zip(ids, sorted(seqs[i] for i in ids)) if seqs[i] != seq}
    conn.executemany("UPDATE tool_calls SET seq = ? WHERE tool_use_id = ?",
                     [(seq, i) for i, seq in moved.items() if i not in unwritten])
    return moved


def call_seen_in_transcript(conn: sqlite3.Connection, tool_use_id: str) -> None:
    """A hook-captured call the transcript has too: hooks keep its timing and batch."""
    conn.execute("UPDATE tool_calls SET source = 'both' WHERE tool_use_id = ? AND source = 'hooks'", (tool_use_id,))


def result_from_transcript(conn: sqlite3.Connection, tool_use_id: str, output: str | None, is_error: bool,
                           error: str | None, status: str) -> None:
    """A stored call's result as the transcript has it: hooks' outcome wins; the transcript settles
    calls that fired no hook (validation errors) and fills a missing output."""
    conn.execute(
        "UPDATE tool_calls SET output = coalesce(output, ?), "
        "is_error = CASE WHEN status = 'running' THEN ? ELSE is_error END, "
        "error = CASE WHEN status = 'running' AND ? THEN ? ELSE error END, "
        "status = CASE WHEN status = 'running' THEN ? ELSE status END WHERE tool_use_id = ?",
        (output, int(is_error), is_error, error, status, tool_use_id))


# ------------------------------------------------------------------ subagents


def subagent_link_from_hooks(conn: sqlite3.Connection, agent_id: str, tool_use_id: str, trace_id: str,
                             session_id: str | None, background: bool | None, ts: float) -> None:
    """The Agent call's response names its agent: that link is definitive, replacing any guess."""
    conn.execute("UPDATE subagents SET parent_tool_use_id = NULL WHERE parent_tool_use_id = ? AND agent_id != ?",
                 (tool_use_id, agent_id))
    conn.execute(
        """
        INSERT INTO subagents (agent_id, session_id, trace_id, parent_tool_use_id, background, started_at)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(agent_id) DO UPDATE SET parent_tool_use_id = excluded.parent_tool_use_id,
            background = excluded.background, trace_id = coalesce(trace_id, excluded.trace_id)
        """,
        (agent_id, session_id, trace_id, tool_use_id, background, ts),
    )


def subagent_started(conn: sqlite3.Connection, agent_id: str, session_id: str | None, trace_id: str,
                     agent_type: str | None, ts: float) -> None:
    """SubagentStart. A foreground agent's Agent call reports its agentId only when the agent is
    done: until then it is paired with the oldest Agent call of the trace that has no agent yet."""
    conn.execute(
        """
        INSERT INTO subagents (agent_id, session_id, trace_id, agent_type, started_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(agent_id) DO UPDATE SET agent_type = excluded.agent_type,
            started_at = min(started_at, excluded.started_at)
        """,
        (agent_id, session_id, trace_id, agent_type, ts),
    )
    if agent_type:  # compaction runs an internal agent with an empty type and no Agent call
        conn.execute(
            """
            UPDATE subagents SET parent_tool_use_id = (
                SELECT c.tool_use_id FROM tool_calls c
                WHERE c.trace_id = ? AND c.name IN ('Agent', 'Task') AND c.status = 'running'
                  AND NOT EXISTS (SELECT 1 FROM subagents s WHERE s.parent_tool_use_id = c.tool_use_id)
                ORDER BY c.seq LIMIT 1)
            WHERE agent_id = ? AND parent_tool_use_id IS NULL
            """,
            (trace_id, agent_id),
        )


def subagent_stopped(conn: sqlite3.Connection, agent_id: str, session_id: str | None, trace_id: str,
                     agent_type: str | None, ts: float, final_response: str | None,
                     transcript_path: str | None) -> None:
    conn.execute(
        """
        INSERT INTO subagents (agent_id, session_id, trace_id, agent_type, started_at, ended_at, final_response,
                               transcript_path)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(agent_id) DO UPDATE SET ended_at = excluded.ended_at,
            final_response = excluded.final_response, transcript_path = excluded.transcript_path,
            agent_type = coalesce(agent_type, excluded.agent_type)
        """,
        (agent_id, session_id, trace_id, agent_type, ts, ts, final_response, transcript_path),
    )


def subagent_from_transcript(conn: sqlite3.Connection, agent_id: str, trace_id: str, tool_use_id: str,
                             session_id: str | None) -> None:
    """A subagent file (or inline sidechain) and the call that launched it: hooks' link wins."""
    conn.execute(
        "INSERT INTO subagents (agent_id, session_id, trace_id, parent_tool_use_id, source) "
        "VALUES (?, ?, ?, ?, 'transcript') ON CONFLICT(agent_id) DO UPDATE SET "
        "parent_tool_use_id = coalesce(parent_tool_use_id, excluded.parent_tool_use_id), "
        "source = CASE source WHEN 'hooks' THEN 'both' ELSE source END",
        (agent_id, session_id, trace_id, tool_use_id))


# ------------------------------------------------------------------ synthetic (bootstrap)


def synthetic_session(conn: sqlite3.Connection, session_id: str, cwd: str, ts: float) -> None:
    conn.execute("INSERT INTO sessions (session_id, cwd, source, started_at, last_event_at, ended_at) "
                 "VALUES (?, ?, 'synthetic', ?, ?, ?)", (session_id, cwd, ts, ts, ts))


def synthetic_trace(conn: sqlite3.Connection, trace_id: str, session_id: str, seq: int, prompt: str,
                    final_response: str, n_batches: int, ts: float) -> None:
    """A completed synthetic trace, queued for its signals."""
    conn.execute("INSERT INTO traces (trace_id, session_id, seq, prompt, started_at, ended_at, status, "
                 "final_response, n_batches, source, synthetic) VALUES (?, ?, ?, ?, ?, ?, 'completed', ?, ?, "
                 "'synthetic', 1)", (trace_id, session_id, seq, prompt, ts, ts, final_response, n_batches))
    store.mark_dirty(conn, [trace_id])


def synthetic_call(conn: sqlite3.Connection, tool_use_id: str, trace_id: str, session_id: str, seq: int, name: str,
                   input_json: str, output_json: str, batch: int, ts: float, reasoning: str | None) -> None:
    """A call that ran (`ok`), with the text before it if it opens its batch."""
    conn.execute(
        "INSERT INTO tool_calls (tool_use_id, trace_id, session_id, seq, name, input, output, status, "
        "batch, started_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, 'ok', ?, ?, 'synthetic')",
        (tool_use_id, trace_id, session_id, seq, name, input_json, output_json, batch, ts))
    if reasoning is not None:
        conn.execute("INSERT INTO reasoning (tool_use_id, text) VALUES (?, ?)", (tool_use_id, reasoning))


# ------------------------------------------------------------------ undoing the transcript's side


def forget_transcript_side(conn: sqlite3.Connection, session_id: str) -> None:
    """Remove what importing this session's transcripts stored, so it can be imported afresh:
    the traces, calls and subagents only the transcript had, the text before each call, usage,
    the links and the read offsets. Hook-captured data stays (rows both sources had go back to
    the hooks' and are merged again); so does feedback, which the re-import's traces (the same
    ids: the prompt's id or line uuid) find again."""
    in_traces = "(SELECT trace_id FROM traces WHERE session_id = ?)"
    in_calls = "(SELECT tool_use_id FROM tool_calls WHERE session_id = ?)"
    transcript_traces = "(SELECT trace_id FROM traces WHERE session_id = ? AND source = 'transcript')"
    for sql in (f"DELETE FROM reasoning WHERE tool_use_id IN {in_calls}",
                f"DELETE FROM agent_links WHERE tool_use_id IN {in_calls}",
                f"DELETE FROM message_usage WHERE trace_id IN {in_traces}",
                f"DELETE FROM transcript_prompts WHERE trace_id IN {in_traces}",
                f"DELETE FROM signals WHERE trace_id IN {transcript_traces}",
                f"DELETE FROM dirty_traces WHERE trace_id IN {transcript_traces}",
                "DELETE FROM tool_calls WHERE session_id = ? AND source = 'transcript'",
                "DELETE FROM subagents WHERE session_id = ? AND source = 'transcript'",
                "DELETE FROM traces WHERE session_id = ? AND source = 'transcript'",
                "UPDATE tool_calls SET source = 'hooks' WHERE session_id = ? AND source = 'both'",
                "UPDATE subagents SET source = 'hooks' WHERE session_id = ? AND source = 'both'",
                "UPDATE traces SET source = 'hooks' WHERE session_id = ? AND source = 'both'",
                "DELETE FROM transcript_offsets WHERE session_id = ?"):
        conn.execute(sql, (session_id,))
