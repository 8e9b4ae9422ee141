"""Transcripts → the same sessions, traces, tool calls and subagents that live capture makes.

Each file is read from its stored offset with its reading state (current prompt, text since the
last call, the message being streamed), so importing again adds nothing and a growing file is
read incrementally. Rows are upserts keyed like live capture's (prompt id, tool_use_id, agent
id) and marked with their source: a session captured by hooks and later imported stays one
session; hooks win on timing, status and the final answer, the transcript fills what they
lack (the text before each call, model, token usage, calls that fired no hook).

This module is the reading state machine: line records (`parser`) in, rows out through
`merge_policy`, which decides what each source wins. Which files make a session is
`discovery`'s; importing many sessions with worker processes reading ahead is `bulk`'s.
Files are read in chunks (byte ranges; see `parser.parse_chunk`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from cc_capture import merge_policy, store
from cc_capture.claude_format import DEFAULT_MAX_OUTPUT_CHARS, TASK_TAGS_RE
from cc_capture.merge_policy import TranscriptCall
from cc_capture.redact import redact_text
from cc_capture.store import transaction
from cc_capture.transcripts.discovery import SessionFiles, first_session_id, session_dir, session_files
from cc_capture.transcripts.parser import (
    AgentLink, AssistantBlock, Chunk, Interrupt, Notification, Prompt, ToolResult, parse_chunks, parse_line,
)
from cc_capture.transcripts.reader import lines_between

if TYPE_CHECKING:
    from cc_capture.transcripts.bulk import Prefetched


class FileState(msgspec.Struct, omit_defaults=True):
    """What reading a file has established so far; stored beside its offset."""

    session: str | None = None
    trace: str | None = None  # the main chain's current trace (an agent file: its parent's)
    agent: str | None = None  # an agent file's agent id
    interrupted: bool = False
    last_ts: float | None = None
    pending: dict[str, str] = {}  # chain → text since the last tool call
    final: dict[str, str] = {}  # chain → text of the current message, while it has no tool call
    text_msg: dict[str, str] = {}  # chain → id of the message `final` belongs to
    batch_msg: dict[str, str] = {}  # chain → id of the message whose calls form the current batch
    batch_no: dict[str, int] = {}  # chain → that batch's number
    batch_calls: dict[str, list[str]] = {}  # chain → that message's calls read so far, in the order written
    last_call: dict[str, str] = {}  # chain → the last tool call read
    chains: dict[str, str] = {}  # 1.0.x inline subagents: line uuid → root uuid
    roots: dict[str, str] = {}  # root uuid → agent id
    command: Prompt | None = None  # a slash command the model has not answered yet (not a trace yet)
    command_ts: float | None = None


@dataclass
class ImportStats:
    files: int = 0
    bytes: int = 0
    lines: int = 0
    sessions: set = field(default_factory=set)
    traces: int = 0
    tool_calls: int = 0
    skipped: Counter = field(default_factory=Counter)
    deferred: int = 0  # agent files whose parent call is not known yet
    failed: dict = field(default_factory=dict)  # session → error
    rescanned: int = 0  # sessions whose earlier import was replaced (older redaction rules)

    def as_dict(self) -> dict:
        return {"files": self.files, "bytes": self.bytes, "lines": self.lines, "sessions": len(self.sessions),
                "traces": self.traces, "tool_calls": self.tool_calls, "skipped": dict(self.skipped.most_common()),
                "deferred": self.deferred, "failed": self.failed, "rescanned": self.rescanned}


@dataclass
class KnownCall:
    """A call of the session as this import knows it (stored, or buffered in `_new_calls`)."""

    trace_id: str
    batch: int | None
    status: str
    has_output: bool
    seq: int


@dataclass
class NewCall:
    """A call no hook reported, buffered until the file's rows are written; `known` is shared
    with the importer's view of the session's calls, so a later shift of seq reaches it."""

    known: KnownCall
    session_id: str | None
    name: str | None
    input_json: str | None
    agent_id: str | None
    started_at: float | None
    output: str | None = None
    is_error: int = 0
    error: str | None = None

    def row(self, tool_use_id: str) -> TranscriptCall:
        k = self.known
        return TranscriptCall(tool_use_id, k.trace_id, self.session_id, k.seq, self.name, self.input_json,
                              self.agent_id, k.batch, self.started_at, k.status, self.output, self.is_error, self.error)


# ---------------------------------------------------------------- the importer


class Importer:
    """Imports transcript files into an open transaction's connection."""

    def __init__(self, conn: sqlite3.Connection, stats: ImportStats | None = None,
                 max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS) -> None:
        self.conn = conn
        self.stats = stats or ImportStats()
        self.max_output_chars = max_output_chars  # outputs are cut as live capture cuts them
        self.touched: set[str] = set()  # traces changed: their signals are recomputed
        # Caches and buffers (one import = one transaction): what is already stored, read once,
        # and rows written in bulk at the end of each file.
        self._calls: dict[str, KnownCall] = {}  # tool_use_id → the call as known
        self._calls_loaded: set[str | None] = set()  # sessions whose calls are in _calls
        self._batches: dict[str, int] = {}  # trace → n_batches
        self._max_seq: dict[str, int] = {}  # trace → highest seq
        self._models: dict[str, str] = {}  # trace → model written
        self._usage: dict[str, tuple] = {}  # message id → usage row (the last line of a message wins)
        self._reasoning: dict[str, str] = {}  # tool_use_id → text before it
        self._new_calls: dict[str, NewCall] = {}  # calls no hook reported, written in bulk (with their results)

    # ------------------------------------------------------------ files

    def import_session(self, files: SessionFiles, prefetched: dict[Path, Prefetched] | None = None) -> None:
        ahead = prefetched or {}
        if files.main is not None:
            self.import_file(files.main, agent_file=False, prefetched=ahead.get(files.main))
        for agent in sorted(files.agents):
            self.import_file(agent, agent_file=True, prefetched=ahead.get(agent))

    def _load(self, path: Path) -> tuple[int, FileState]:
        row = self.conn.execute("SELECT offset, state FROM transcript_offsets WHERE path = ?", (str(path),)).fetchone()
        if not row:
            return 0, FileState()
        return row[0], msgspec.json.decode(row[1].encode(), type=FileState)

    def import_file(self, path: Path, agent_file: bool, prefetched: Prefetched | None = None) -> None:
        """Read a file from its stored offset; `prefetched` holds its chunks parsed ahead by workers,
        used only if they start where the store says reading resumes."""
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            size = -1
        offset, state = self._load(path)
        if 0 <= size < offset:  # rewritten: read it again from the start
            offset, state = 0, FileState()
        if size <= offset:
            return
        self.stats.files += 1
        if agent_file and not self._start_agent_file(path, state):
            self.stats.deferred += 1
            return
        start = offset
        # chunks parsed ahead from another offset (the daemon read the file meanwhile) are dropped
        usable = prefetched is not None and prefetched.start == offset
        chunks = prefetched.chunks() if usable else parse_chunks(path, offset, size, session_dir(path, agent_file),
                                                                          self.max_output_chars)
        for chunk in chunks:
            offset = max(offset, chunk.end)
            self.stats.lines += chunk.n_lines
            self.stats.skipped.update(chunk.skipped)
            self._chunk(chunk, path, state, agent_file)
        self.stats.bytes += offset - start
        if state.session:
            self.stats.sessions.add(state.session)
        if not agent_file:
            self._settle_main(state)
        # the carried text is stored too: secrets out of it, like everything else
        state.pending = {k: redact_text(v) for k, v in state.pending.items()}
        state.final = {k: redact_text(v) for k, v in state.final.items()}
        self._flush()
        self.conn.execute(
            "INSERT OR REPLACE INTO transcript_offsets (path, session_id, offset, pending_text, state, size) "
            "VALUES (?, ?, ?, '', ?, ?)",
            (str(path), state.session, offset, msgspec.json.encode(state).decode(), size),
        )
        store.mark_dirty(self.conn, self.touched)

    def _chunk(self, chunk: Chunk, path: Path, state: FileState, agent_file: bool) -> None:
        for line in chunk.lines:
            ts = line.ts or state.last_ts
            state.last_ts = ts
            if state.session is None and line.session_id:
                state.session = line.session_id
                merge_policy.session_from_transcript(self.conn, line.session_id, line.cwd,
                                                    None if agent_file else str(path), ts, line.git_branch)
            if state.agent and state.agent.startswith("acompact"):
                self.stats.skipped["compaction agent"] += 1
                continue
            self._line(line, state, ts, agent_file)

    def _flush_calls(self) -> None:
        """Write the buffered new calls (before anything queries tool_calls)."""
        if not self._new_calls:
            return
        ids = list(self._new_calls)
        taken = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            taken |= {r[0] for r in self.conn.execute(f"SELECT tool_use_id FROM tool_calls WHERE tool_use_id IN ({marks})",
                                                      chunk)}
        for tool_use_id in taken:  # the id belongs to a call of another session: keep that one
            del self._new_calls[tool_use_id]
            self._calls.pop(tool_use_id, None)
            self._reasoning.pop(tool_use_id, None)
            self.stats.tool_calls -= 1
            self.stats.skipped["tool_use_id already used by another session"] += 1
        merge_policy.calls_from_transcript(self.conn, [c.row(k) for k, c in self._new_calls.items()])
        self._new_calls.clear()

    def _flush(self) -> None:
        """Write the buffered rows: new calls, usage, reasoning, batch counters."""
        self._flush_calls()
        self.conn.executemany(
            "INSERT OR REPLACE INTO message_usage (message_id, trace_id, agent_id, model, input_tokens, output_tokens, "
            "cache_read_tokens, cache_creation_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(self._usage.values()))
        self.conn.executemany("INSERT OR REPLACE INTO reasoning (tool_use_id, text) VALUES (?, ?)",
                              [(k, redact_text(v)) for k, v in self._reasoning.items()])
        self.conn.executemany("UPDATE traces SET n_batches = ? WHERE trace_id = ?",
                              [(n, t) for t, n in self._batches.items()])
        self._usage.clear()
        self._reasoning.clear()

    def _known_calls(self, session: str | None) -> dict[str, KnownCall]:
        if session not in self._calls_loaded:
            self._calls_loaded.add(session)
            for row in self.conn.execute("SELECT tool_use_id, trace_id, batch, status, output IS NOT NULL, seq "
                                         "FROM tool_calls WHERE session_id = ?", (session,)):
                self._calls[row[0]] = KnownCall(row[1], row[2], row[3], bool(row[4]), row[5])
        return self._calls

    def _trace_counters(self, trace_id: str) -> None:
        if trace_id not in self._batches:
            n, top = self.conn.execute(
                "SELECT t.n_batches, (SELECT coalesce(max(seq), 0) FROM tool_calls WHERE trace_id = t.trace_id) "
                "FROM traces t WHERE t.trace_id = ?", (trace_id,)).fetchone() or (0, 0)
            self._batches[trace_id], self._max_seq[trace_id] = n, top

    def _start_agent_file(self, path: Path, state: FileState) -> bool:
        """An agent file belongs to the trace of the Agent/Task call that launched it; find that call."""
        if state.trace:
            return True
        agent_id = path.stem.removeprefix("agent-")
        state.agent = agent_id
        if agent_id.startswith("acompact"):
            state.trace = ""
            return True
        meta = path.with_suffix(".meta.json")
        if meta.exists():
            try:
                tool_use_id = json.loads(meta.read_text()).get("toolUseId")
            except (OSError, ValueError):
                tool_use_id = None
            if tool_use_id:
                self.conn.execute("INSERT OR REPLACE INTO agent_links (agent_id, tool_use_id) VALUES (?, ?)",
                                  (agent_id, tool_use_id))
        session = first_session_id(path)
        state.session = session
        parent = self._parent_call(agent_id, None, session)
        if parent is None:
            task = self._agent_task(path)
            parent = self._parent_call(agent_id, task, session) if task else None
        if parent is None:
            return False
        tool_use_id, trace_id = parent
        state.trace = trace_id
        merge_policy.subagent_from_transcript(self.conn, agent_id, trace_id, tool_use_id, state.session)
        return True

    def _agent_task(self, path: Path) -> str | None:
        for raw, _ in lines_between(path, 0, os.stat(path).st_size):
            line = parse_line(raw)
            if line.kind == "prompt":
                return line.records[0].text
        return None

    def _parent_call(self, agent_id: str, task: str | None, session: str | None) -> tuple[str, str] | None:
        """(tool_use_id, trace_id) of the call that launched this agent: by link, else by its task text."""
        self._flush_calls()
        row = self.conn.execute(
            "SELECT c.tool_use_id, c.trace_id FROM agent_links l JOIN tool_calls c USING (tool_use_id) "
            "WHERE l.agent_id = ?", (agent_id,)).fetchone()
        if row or task is None:
            return row
        return self.conn.execute(
            "SELECT c.tool_use_id, c.trace_id FROM tool_calls c WHERE c.session_id = ? AND c.name IN ('Agent', 'Task') "
            "AND json_extract(c.input, '$.prompt') = ? "
            "AND NOT EXISTS (SELECT 1 FROM subagents s WHERE s.parent_tool_use_id = c.tool_use_id) "
            "ORDER BY c.started_at LIMIT 1", (session, redact_text(task))).fetchone()

    # ------------------------------------------------------------ lines

    def _line(self, line, state: FileState, ts: float | None, agent_file: bool) -> None:
        chain, agent = "main", state.agent if agent_file else None
        if line.sidechain and not agent_file:  # 1.0.x: an inline subagent conversation
            root = line.uuid if (line.kind == "prompt" and line.records[0].sidechain_root) else \
                state.chains.get(line.parent_uuid or "")
            if root is None:
                self.stats.skipped["sidechain without its start"] += 1
                return
            if line.uuid:
                state.chains[line.uuid] = root
            chain, agent = root, state.roots.get(root)
        for rec in line.records:
            if isinstance(rec, Prompt):
                self._prompt(rec, line, state, ts, chain, agent_file)
            elif isinstance(rec, AssistantBlock):
                self._assistant(rec, state, ts, chain, agent)
            elif isinstance(rec, ToolResult):
                self._result(rec, state, chain)
            elif isinstance(rec, Interrupt):
                state.interrupted = True
                state.final[chain] = ""
            elif isinstance(rec, Notification):
                self._notification(rec, state, ts)
            elif isinstance(rec, AgentLink):
                self.conn.execute("INSERT OR REPLACE INTO agent_links (agent_id, tool_use_id) VALUES (?, ?)",
                                  (rec.agent_id, rec.tool_use_id))

    def _prompt(self, rec: Prompt, line, state: FileState, ts, chain: str, agent_file: bool) -> None:
        if agent_file:  # the subagent's task, not a user prompt
            return
        if chain != "main":  # the start of an inline subagent: link it to its Task call
            parent = self._parent_call("", rec.text, state.session)
            if parent and state.trace:
                agent_id = "sidechain-" + (rec.uuid or "")[:13]
                state.roots[chain] = agent_id
                tool_use_id, trace_id = parent
                merge_policy.subagent_from_transcript(self.conn, agent_id, trace_id, tool_use_id, state.session)
            return
        self._settle_main(state, closing=True)
        self._drop_command(state)
        if rec.command:  # built-in commands (/mcp, /clear, ...) run locally: no reply, no trace
            state.trace, state.command, state.command_ts = None, rec, ts
            return
        self._open_trace(rec, state, ts)

    def _drop_command(self, state: FileState) -> None:
        """The conversation went on past a slash command the model never answered: no trace."""
        if state.command is not None:
            self.stats.skipped["slash command with no reply"] += 1
            state.command = None

    def _open_trace(self, rec: Prompt, state: FileState, ts: float | None) -> None:
        state.trace = self._trace_for(rec, state.session, ts)
        state.interrupted = False
        state.pending["main"] = state.final["main"] = ""

    def _trace_for(self, rec: Prompt, session: str | None, ts: float | None) -> str:
        """The trace of a prompt line: its prompt id (as live capture), else a matching hook-captured
        prompt of this session, else the line's own uuid."""
        known = self.conn.execute("SELECT trace_id FROM transcript_prompts WHERE uuid = ?", (rec.uuid,)).fetchone()
        if known:
            return known[0]
        prompt = redact_text(rec.text)
        trace_id = rec.prompt_id
        if trace_id is None:
            trace_id = merge_policy.hooks_trace_of_prompt(self.conn, session, prompt) or rec.uuid or f"{session}:{ts}"
        if merge_policy.trace_from_transcript(self.conn, trace_id, session, rec.prompt_id, prompt, ts):
            self.stats.traces += 1
        self.conn.execute("INSERT OR IGNORE INTO transcript_prompts (uuid, trace_id) VALUES (?, ?)",
                          (rec.uuid or trace_id, trace_id))
        self.touched.add(trace_id)
        return trace_id

    def _assistant(self, rec: AssistantBlock, state: FileState, ts, chain: str, agent: str | None) -> None:
        if state.command is not None and chain == "main":  # the model answers a slash command: a trace
            command, state.command = state.command, None
            self._open_trace(command, state, state.command_ts)
        trace_id = state.trace
        if not trace_id:
            self.stats.skipped["assistant before any prompt"] += 1
            return
        if rec.usage is not None and rec.message_id:
            u = rec.usage
            self._usage[rec.message_id] = (rec.message_id, trace_id, agent, rec.model, u.input_tokens,
                                           u.output_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens)
        if rec.model and not rec.model.startswith("<") and agent is None and self._models.get(trace_id) != rec.model:
            self._models[trace_id] = rec.model
            merge_policy.model_from_transcript(self.conn, trace_id, state.session, rec.model)
        if rec.kind in ("text", "thinking"):
            if rec.text:
                pending = state.pending.get(chain, "")
                state.pending[chain] = f"{pending}\n\n{rec.text}" if pending else rec.text
            if rec.kind == "text":
                if state.text_msg.get(chain) != rec.message_id:
                    state.final[chain] = ""
                    state.text_msg[chain] = rec.message_id or ""
                final = state.final.get(chain, "")
                state.final[chain] = (final + rec.text) if final else rec.text.strip()
            return
        # a tool call: the calls of one assistant message form one batch
        calls = self._known_calls(state.session)
        self._trace_counters(trace_id)
        existing = calls.get(rec.tool_use_id)
        same_message = state.batch_msg.get(chain) == rec.message_id
        if existing:  # captured by hooks too: they keep timing and batch
            merge_policy.call_seen_in_transcript(self.conn, rec.tool_use_id)
            batch = existing.batch if existing.batch is not None else \
                (state.batch_no.get(chain) if same_message else None)
        else:
            batch = state.batch_no.get(chain) if same_message else None
            if batch is None:
                self._batches[trace_id] += 1
                batch = self._batches[trace_id]
            self._insert_call(rec, trace_id, state, chain, agent, batch, ts)
            self.stats.tool_calls += 1
        written = state.batch_calls.get(chain, []) if same_message else []
        written.append(rec.tool_use_id)
        state.batch_calls[chain] = written
        if existing and len(written) > 1:
            self._in_written_order(written)
        state.batch_msg[chain] = rec.message_id or ""
        if batch is not None:
            state.batch_no[chain] = batch
        state.last_call[chain] = rec.tool_use_id
        self._reasoning[rec.tool_use_id] = state.pending.get(chain, "").strip()
        state.pending[chain] = state.final[chain] = ""
        self.touched.add(trace_id)

    def _in_written_order(self, ids: list[str]) -> None:
        """A hook-captured call of a message: its calls take the order the model wrote them in (where
        no PostToolBatch hook ordered them: older Claude Code fires none)."""
        known = [self._calls.get(i) for i in ids]
        if any(k is None for k in known) or len({k.trace_id for k in known}) > 1:
            return
        moved = merge_policy.calls_in_written_order(self.conn, ids, {i: k.seq for i, k in zip(ids, known)},
                                                    self._new_calls)
        for i, seq in moved.items():
            self._calls[i].seq = seq

    def _insert_call(self, rec: AssistantBlock, trace_id: str, state: FileState, chain: str, agent: str | None,
                     batch: int, ts: float | None) -> None:
        """A call no hook reported: placed right after the call that preceded it in the transcript."""
        prev = self._calls.get(state.last_call.get(chain) or "")
        top = self._max_seq[trace_id]
        if prev and prev.trace_id == trace_id and prev.seq < top:  # in the middle of hook-captured calls
            self.conn.execute("UPDATE tool_calls SET seq = seq + 1 WHERE trace_id = ? AND seq > ?", (trace_id, prev.seq))
            for call in self._calls.values():  # buffered calls are in _calls too
                if call.trace_id == trace_id and call.seq > prev.seq and call is not prev:
                    call.seq += 1
            seq = prev.seq + 1
        else:
            seq = top + 1
        self._max_seq[trace_id] = top + 1
        known = KnownCall(trace_id, batch, "running", False, seq)
        self._calls[rec.tool_use_id] = known
        self._new_calls[rec.tool_use_id] = NewCall(known, state.session, rec.name, rec.input_json, agent, ts)

    def _result(self, rec: ToolResult, state: FileState, chain: str) -> None:
        state.pending[chain] = state.final[chain] = ""
        known = self._known_calls(state.session).get(rec.tool_use_id)
        if known is None or (known.status != "running" and known.has_output):
            return  # unknown call, or hooks already settled it: nothing to store
        known.has_output = True
        new = self._new_calls.get(rec.tool_use_id)
        if new is not None:  # still buffered: settle it in memory
            known.status = rec.status
            new.output, new.is_error, new.error = rec.output, int(rec.is_error), rec.error
            return
        merge_policy.result_from_transcript(self.conn, rec.tool_use_id, rec.output, rec.is_error, rec.error,
                                            rec.status)

    def _notification(self, rec: Notification, state: FileState, ts) -> None:
        """A background agent finished: its notification continues the trace that launched it."""
        tags = dict(TASK_TAGS_RE.findall(rec.text))
        self._flush_calls()
        row = self.conn.execute("SELECT trace_id FROM tool_calls WHERE tool_use_id = ?",
                                (tags.get("tool-use-id"),)).fetchone()
        if row:
            self._settle_main(state, closing=True)
            self._drop_command(state)
            state.trace = row[0]
            state.pending["main"] = state.final["main"] = ""
            if rec.prompt_id:
                self.conn.execute("INSERT OR IGNORE INTO prompt_routes (prompt_id, trace_id) VALUES (?, ?)",
                                  (rec.prompt_id, row[0]))

    def _settle_main(self, state: FileState, closing: bool = False) -> None:
        """A transcript-only trace is completed once its last message is text with no call pending,
        interrupted if the user stopped it, else still open. Hook-captured traces keep their Stop."""
        if not state.trace:
            return
        final = state.final.get("main", "")
        if state.interrupted:
            status = "interrupted"
        elif final:
            status = "completed"
        else:
            status = "interrupted" if closing else "open"
        merge_policy.settle_trace_from_transcript(self.conn, state.trace, status, redact_text(final) or None,
                                                  state.last_ts)
        self.touched.add(state.trace)


def sync_sessions(db, transcripts: set[Path], max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS) -> int:
    """Import what these sessions' transcripts added since they were last read (text before each
    call, model, usage, calls that fired no hook): the ingest pass calls it for the sessions its
    events touched. One transaction per session; returns lines read."""
    lines = 0
    for path in transcripts:
        with transaction(db) as conn:
            importer = Importer(conn, max_output_chars=max_output_chars)
            importer.import_session(session_files(path))
            lines += importer.stats.lines
    return lines
