"""Reasoning text from the transcript: the assistant's words before each tool call.

Hooks carry tool calls but not the text the assistant wrote around them; the transcript has
it, a little later than the hooks (it lags: the daemon re-reads it for a while after each
event). Each transcript is read from a stored offset; text seen since the last tool call or
user line is carried across reads and attached to the next `tool_use` block by its id.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import msgspec

from cc_capture.redact import redact_text
from cc_capture.transcripts.reader import new_lines


class _Block(msgspec.Struct):
    type: str = ""
    text: str | None = None
    thinking: str | None = None
    id: str | None = None


class _Message(msgspec.Struct):
    model: str | None = None
    content: list[_Block] | str | None = None


class _Line(msgspec.Struct):
    type: str = ""
    message: _Message | None = None


_line_decoder = msgspec.json.Decoder(_Line)


def sync_reasoning(conn: sqlite3.Connection, path: Path, session_id: str | None) -> int:
    """Read what was appended to one transcript; store reasoning rows. Returns lines read."""
    row = conn.execute("SELECT offset, pending_text FROM transcript_offsets WHERE path = ?", (str(path),)).fetchone()
    offset, pending = (row[0], row[1]) if row else (0, "")
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return 0
    if size < offset:  # rewritten: start again
        offset, pending = 0, ""
    if size == offset:
        return 0
    n = 0
    model = None
    for line, end in new_lines(path, offset):
        offset = end
        n += 1
        try:
            rec = _line_decoder.decode(line)
        except msgspec.DecodeError:
            continue  # not ours to judge here; the transcript importer counts bad lines
        msg = rec.message
        if rec.type == "user":
            pending = ""
        elif rec.type == "assistant" and msg is not None and isinstance(msg.content, list):
            if msg.model and not msg.model.startswith("<"):
                model = msg.model
            for block in msg.content:
                if block.type == "text" and block.text:
                    pending = f"{pending}\n\n{block.text}" if pending else block.text
                elif block.type == "thinking" and block.thinking:
                    pending = f"{pending}\n\n{block.thinking}" if pending else block.thinking
                elif block.type == "tool_use" and block.id:
                    conn.execute(
                        "INSERT OR REPLACE INTO reasoning (tool_use_id, text) VALUES (?, ?)",
                        (block.id, redact_text(pending.strip())),
                    )
                    # the trace's signals read this text: recompute them
                    conn.execute(
                        "INSERT OR IGNORE INTO dirty_traces SELECT trace_id FROM tool_calls WHERE tool_use_id = ?",
                        (block.id,),
                    )
                    pending = ""
    conn.execute(
        "INSERT OR REPLACE INTO transcript_offsets (path, session_id, offset, pending_text) VALUES (?, ?, ?, ?)",
        (str(path), session_id, offset, redact_text(pending)),
    )
    if model and session_id:
        conn.execute("UPDATE sessions SET model = ? WHERE session_id = ?", (model, session_id))
    return n


def subagent_transcript(transcript_path: str, agent_id: str) -> Path:
    """Where Claude Code 2.1 writes a subagent's transcript: `<session>/subagents/agent-<id>.jsonl`."""
    p = Path(transcript_path)
    return p.with_suffix("") / "subagents" / f"agent-{agent_id}.jsonl"
