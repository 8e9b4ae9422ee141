"""Hook events → sessions, traces, tool calls and subagents, as idempotent upserts.

Assembly never assumes arrival order beyond what Claude Code guarantees: rows are keyed by
`prompt_id` (traces), `tool_use_id` (tool calls) and `agent_id` (subagents), and each event
fills in what it knows. A trace is one real user prompt and everything the agent did for it,
until Stop, StopFailure, or an interruption (the next prompt or the end of the session). A
`<task-notification>` prompt, which Claude Code submits when a background agent finishes, is
not a user prompt: its events continue the trace that launched the agent.
"""

from __future__ import annotations

import sqlite3
import uuid

import msgspec

from cc_capture import merge_policy
from cc_capture.claude_format import AGENT_TOOLS, TASK_NOTIFICATION, TASK_TAGS_RE, cap_output, cap_text
from cc_capture.ingest.events import HookEvent, decode_agent_launch, raw_json, raw_text

# Events that belong to a session but to no trace.
_SESSION_ONLY = {"SessionStart", "SessionEnd", "Notification", "PreCompact", "PostCompact"}


class Assembler:
    """Applies one event at a time to an open SQLite transaction."""

    def __init__(self, conn: sqlite3.Connection, max_output_chars: int) -> None:
        self.conn = conn
        self.max_output_chars = max_output_chars
        # Per-transaction caches: rows known to exist, and each session's latest event time.
        self._session_seen: dict[str, float] = {}
        self._traces_seen: set[str] = set()
        self._routes: dict[str, str] = {}

    def flush(self) -> None:
        """Write what the caches deferred (sessions' last event times); call before commit."""
        self.conn.executemany(
            "UPDATE sessions SET last_event_at = max(coalesce(last_event_at, 0), ?) WHERE session_id = ?",
            [(ts, sid) for sid, ts in self._session_seen.items()],
        )

    # ------------------------------------------------------------ entry point

    def apply(self, ev: HookEvent, ts: float) -> str | None:
        """Fold one event into the tables; return the trace it belongs to, if any."""
        if not ev.session_id:
            return None
        self._touch_session(ev, ts)
        name = ev.hook_event_name
        if name in _SESSION_ONLY:
            self._session_event(ev, ts)
            return None
        if name == "UserPromptSubmit":
            return self._prompt(ev, ts)
        trace_id = self._route(ev, ts)
        handler = getattr(self, "_on_" + name, None)
        if handler is not None:
            handler(ev, ts, trace_id)
        return trace_id

    # ------------------------------------------------------------ sessions

    def _touch_session(self, ev: HookEvent, ts: float) -> None:
        if ev.session_id in self._session_seen:
            self._session_seen[ev.session_id] = max(ts, self._session_seen[ev.session_id])
            return
        self._session_seen[ev.session_id] = ts
        merge_policy.session_from_hooks(self.conn, ev.session_id, ev.cwd, ev.transcript_path, ev.permission_mode, ts)

    def _session_event(self, ev: HookEvent, ts: float) -> None:
        name = ev.hook_event_name
        if name == "SessionStart":
            self.conn.execute(
                "UPDATE sessions SET source = coalesce(source, ?), model = coalesce(?, model) WHERE session_id = ?",
                (ev.source, ev.model, ev.session_id),
            )
        elif name == "SessionEnd":
            self.conn.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE session_id = ?", (ts, ev.reason, ev.session_id)
            )
            self._interrupt_open(ev.session_id, ts, keep=None)
        elif name == "PostCompact":
            self.conn.execute(
                "UPDATE sessions SET n_compactions = n_compactions + 1 WHERE session_id = ?", (ev.session_id,)
            )

    # ------------------------------------------------------------ traces

    def _prompt(self, ev: HookEvent, ts: float) -> str:
        prompt = ev.prompt or ""
        if prompt.lstrip().startswith(TASK_NOTIFICATION):
            return self._task_notification(ev, prompt, ts)
        trace_id = ev.prompt_id or str(uuid.uuid4())
        self._interrupt_open(ev.session_id, ts, keep=trace_id)
        self._ensure_trace(trace_id, ev, ts)
        merge_policy.prompt_from_hooks(self.conn, trace_id, prompt, ts)
        return trace_id

    def _ensure_trace(self, trace_id: str, ev: HookEvent, ts: float) -> None:
        if trace_id in self._traces_seen:
            return
        self._traces_seen.add(trace_id)
        merge_policy.trace_from_hooks(self.conn, trace_id, ev.session_id, ev.prompt_id, ts)

    def _interrupt_open(self, session_id: str | None, ts: float, keep: str | None) -> None:
        """A trace still open when the next prompt comes (or the session ends) was interrupted."""
        self.conn.execute(
            "UPDATE traces SET status = 'interrupted', ended_at = coalesce(ended_at, ?) "
            "WHERE session_id = ? AND status = 'open' AND trace_id IS NOT ?",
            (ts, session_id, keep),
        )

    def _route(self, ev: HookEvent, ts: float) -> str:
        """The trace an event belongs to: by prompt_id (or its route), else the session's latest."""
        if ev.prompt_id:
            trace_id = self._routes.get(ev.prompt_id)
            if trace_id is None:
                row = self.conn.execute("SELECT trace_id FROM prompt_routes WHERE prompt_id = ?",
                                        (ev.prompt_id,)).fetchone()
                trace_id = self._routes[ev.prompt_id] = row[0] if row else ev.prompt_id
        else:
            row = self.conn.execute(
                "SELECT trace_id FROM traces WHERE session_id = ? ORDER BY seq DESC LIMIT 1", (ev.session_id,)
            ).fetchone()
            trace_id = row[0] if row else str(uuid.uuid4())
        self._ensure_trace(trace_id, ev, ts)
        return trace_id

    def _task_notification(self, ev: HookEvent, prompt: str, ts: float) -> str:
        tags = dict(TASK_TAGS_RE.findall(prompt))
        trace_id = None
        if tags.get("tool-use-id"):
            row = self.conn.execute(
                "SELECT trace_id FROM tool_calls WHERE tool_use_id = ?", (tags["tool-use-id"],)
            ).fetchone()
            trace_id = row[0] if row else None
        if trace_id is None and tags.get("task-id"):
            row = self.conn.execute("SELECT trace_id FROM subagents WHERE agent_id = ?", (tags["task-id"],)).fetchone()
            trace_id = row[0] if row else None
        if trace_id is None:
            row = self.conn.execute(
                "SELECT trace_id FROM traces WHERE session_id = ? ORDER BY seq DESC LIMIT 1", (ev.session_id,)
            ).fetchone()
            trace_id = row[0] if row else (ev.prompt_id or str(uuid.uuid4()))
            self._ensure_trace(trace_id, ev, ts)
        if ev.prompt_id:
            self._routes[ev.prompt_id] = trace_id
            self.conn.execute(
                "INSERT OR REPLACE INTO prompt_routes (prompt_id, trace_id) VALUES (?, ?)", (ev.prompt_id, trace_id)
            )
        if tags.get("task-id"):
            self.conn.execute(
                "UPDATE subagents SET final_response = coalesce(final_response, ?), ended_at = coalesce(ended_at, ?) "
                "WHERE agent_id = ?",
                (tags.get("result"), ts, tags["task-id"]),
            )
        return trace_id

    def _on_Stop(self, ev: HookEvent, ts: float, trace_id: str) -> None:
        self.conn.execute(
            "UPDATE traces SET status = 'completed', ended_at = ?, final_response = coalesce(?, final_response) "
            "WHERE trace_id = ?",
            (ts, ev.last_assistant_message, trace_id),
        )

    def _on_StopFailure(self, ev: HookEvent, ts: float, trace_id: str) -> None:
        error = raw_text(ev.error) or "StopFailure"
        details = raw_text(ev.error_details)
        if details:
            error = f"{error}: {details}"
        self.conn.execute(
            "UPDATE traces SET status = 'failed', ended_at = ?, error = ?, "
            "final_response = coalesce(?, final_response) WHERE trace_id = ?",
            (ts, error, ev.last_assistant_message, trace_id),
        )

    # ------------------------------------------------------------ tool calls

    def _upsert_call(self, ev: HookEvent, ts: float, trace_id: str, tool_use_id: str,
                     name: str | None = None, tool_input: msgspec.Raw | None = None) -> None:
        """Create the call at first sight (whichever event that is), or fill what it lacks."""
        merge_policy.call_from_hooks(self.conn, tool_use_id, trace_id, ev.session_id, name or ev.tool_name,
                                     raw_json(ev.tool_input if tool_input is None else tool_input), ev.agent_id, ts)

    def _on_PreToolUse(self, ev: HookEvent, ts: float, trace_id: str) -> None:
        if ev.tool_use_id:
            self._upsert_call(ev, ts, trace_id, ev.tool_use_id)

    def _on_PostToolUse(self, ev: HookEvent, ts: float, trace_id: str) -> None:
        if not ev.tool_use_id:
            return
        self._upsert_call(ev, ts, trace_id, ev.tool_use_id)
        status = "ok"
        if ev.tool_name in AGENT_TOOLS:
            launch = decode_agent_launch(ev.tool_response)
            if launch and launch.agentId:
                merge_policy.subagent_link_from_hooks(self.conn, launch.agentId, ev.tool_use_id, trace_id,
                                                      ev.session_id, bool(launch.isAsync), ts)
                if launch.isAsync:
                    status = "async_launched"
        self.conn.execute(
            "UPDATE tool_calls SET output = ?, status = ?, is_error = 0, error = NULL, ended_at = ?, "
            "duration_ms = coalesce(?, duration_ms) WHERE tool_use_id = ?",
            (cap_output(bytes(ev.tool_response), self.max_output_chars) if ev.tool_response else None, status, ts,
             _ms(ev.duration_ms), ev.tool_use_id),
        )

    def _on_PostToolUseFailure(self, ev: HookEvent, ts: float, trace_id: str) -> None:
        if not ev.tool_use_id:
            return
        self._upsert_call(ev, ts, trace_id, ev.tool_use_id)
        self.conn.execute(
            "UPDATE tool_calls SET is_error = 1, error = ?, status = ?, ended_at = ?, "
            "duration_ms = coalesce(?, duration_ms) WHERE tool_use_id = ?",
            (
                cap_text(raw_text(ev.error), self.max_output_chars), "interrupted" if ev.is_interrupt else "error", ts,
                _ms(ev.duration_ms), ev.tool_use_id,
            ),
        )

    def _on_PermissionRequest(self, ev: HookEvent, ts: float, trace_id: str) -> None:
        """PermissionRequest carries no tool_use_id: it asks about the latest running call of that tool and input."""
        tool_input = raw_json(ev.tool_input)
        self.conn.execute(
            """
            UPDATE tool_calls SET permission_requested = 1 WHERE tool_use_id = (
                SELECT tool_use_id FROM tool_calls
                WHERE trace_id = ? AND name = ? AND status = 'running' AND agent_id IS ?
                ORDER BY (input = ?) DESC, seq DESC LIMIT 1)
            """,
            (trace_id, ev.tool_name, ev.agent_id, tool_input),
        )

    def _on_PostToolBatch(self, ev: HookEvent, ts: float, trace_id: str) -> None:
        """One round of tool calls: number it, and settle calls that fired no Post/Failure hook."""
        self.conn.execute("UPDATE traces SET n_batches = n_batches + 1 WHERE trace_id = ?", (trace_id,))
        (batch,) = self.conn.execute("SELECT n_batches FROM traces WHERE trace_id = ?", (trace_id,)).fetchone()
        calls = [c for c in ev.tool_calls or [] if c.tool_use_id]
        for call in calls:
            self._upsert_call(ev, ts, trace_id, call.tool_use_id, call.tool_name, call.tool_input)
            self.conn.execute("UPDATE tool_calls SET batch = ? WHERE tool_use_id = ?", (batch, call.tool_use_id))
            # No Post/Failure came: permission was refused (not run), or Claude Code rejected the
            # input before running it (a validation error, e.g. an Edit whose old_string is absent).
            self.conn.execute(
                "UPDATE tool_calls SET status = CASE permission_requested WHEN 1 THEN 'not_run' ELSE 'error' END, "
                "is_error = 1, error = ?, ended_at = ? WHERE tool_use_id = ? AND status = 'running'",
                (cap_text(raw_text(call.tool_response), self.max_output_chars), ts, call.tool_use_id),
            )
        # Hooks of parallel calls may finish in any order; the batch lists them as the model wrote them.
        ids = [c.tool_use_id for c in calls]
        marks = ",".join("?" * len(ids))
        seqs = dict(self.conn.execute(f"SELECT tool_use_id, seq FROM tool_calls WHERE tool_use_id IN ({marks})", ids))
        merge_policy.calls_in_written_order(self.conn, ids, seqs)

    # ------------------------------------------------------------ subagents

    def _on_SubagentStart(self, ev: HookEvent, ts: float, trace_id: str) -> None:
        if ev.agent_id:
            merge_policy.subagent_started(self.conn, ev.agent_id, ev.session_id, trace_id, ev.agent_type, ts)

    def _on_SubagentStop(self, ev: HookEvent, ts: float, trace_id: str) -> None:
        if ev.agent_id:
            merge_policy.subagent_stopped(self.conn, ev.agent_id, ev.session_id, trace_id, ev.agent_type, ts,
                                          ev.last_assistant_message, ev.agent_transcript_path)


def _ms(value: float | None) -> int | None:
    return None if value is None else int(value)
