"""Transcripts → the same sessions, traces, tool calls and subagents that live capture makes.

Each file is read from its stored offset with its reading state (current prompt, text since the
last call, the message being streamed), so importing again adds nothing and a growing file is
read incrementally. Rows are upserts keyed like live capture's (prompt id, tool_use_id, agent
id) and marked with their source: a session captured by hooks and later imported stays one
session; hooks win on timing, status and the final answer, the transcript fills what they
lack (the text before each call, model, token usage, calls that fired no hook).

Files are read in chunks (byte ranges; see `parser.parse_chunk`). For a bulk import, worker
processes read, parse and redact chunks a bounded distance ahead while this process, the only
writer, assembles and stores them in order: sessions go in one SAVEPOINT each, inside
transactions committed every COMMIT_EVERY_S.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sqlite3
import time
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import msgspec

from cc_capture import redact, store
from cc_capture.claude_format import DEFAULT_MAX_OUTPUT_CHARS, TASK_TAGS_RE
from cc_capture.redact import redact_text
from cc_capture.store import transaction
from cc_capture.transcripts.parser import (
    CHUNK_BYTES, AgentLink, AssistantBlock, Chunk, Interrupt, Notification, Prompt, ToolResult, decode_chunk, parse_chunk,
    parse_chunks, parse_chunks_encoded, parse_line,
)
from cc_capture.transcripts.reader import lines_between

log = logging.getLogger("ccd.import")


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


# ---------------------------------------------------------------- session files


@dataclass
class SessionFiles:
    main: Path | None
    agents: list[Path] = field(default_factory=list)


def _first_session_id(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                line = parse_line(raw.rstrip(b"\n"))
                if line.session_id:
                    return line.session_id
                if line.kind == "bad":
                    continue
    except OSError:
        return None
    return None


def session_files(main: Path) -> SessionFiles:
    """A 2.1.x session's files: its transcript and `<session>/subagents/agent-*.jsonl`."""
    return SessionFiles(main, sorted(f for f in (main.with_suffix("") / "subagents").glob("agent-*.jsonl")
                                     if f.is_file()))


def discover(paths: Iterable[Path]) -> dict[str, SessionFiles]:
    """Sessions under these files or folders: main transcript and subagent files, by session id."""
    sessions: dict[str, SessionFiles] = {}
    files: list[Path] = []
    for p in paths:
        if p.is_dir():  # regular files only: not a folder named x.jsonl, nor a symlink loop
            files.extend(f for f in sorted(p.rglob("*.jsonl")) if f.is_file())
        elif p.suffix == ".jsonl" and p.is_file():
            files.append(p)
    for f in files:
        if f.parent.name == "subagents":  # 2.1.x: <session>/subagents/agent-<id>.jsonl
            sessions.setdefault(f.parent.parent.name, SessionFiles(None)).agents.append(f)
        elif f.name.startswith("agent-"):  # 2.0.x: flat agent files beside the session
            sid = _first_session_id(f)
            if sid:
                sessions.setdefault(sid, SessionFiles(None)).agents.append(f)
        else:
            sessions.setdefault(f.stem, SessionFiles(None)).main = f
    return sessions


def _session_dir(path: Path, agent_file: bool) -> Path:
    """The folder beside a session's transcript (`subagents/`, spilled `tool-results/`)."""
    return path.parent.parent if agent_file else path.with_suffix("")


class _Ahead:
    """One chunk handed to the worker processes: parse_chunk's arguments, and once submitted the
    future of the batch it went in with and its place there."""

    def __init__(self, args: tuple) -> None:
        self.args = args
        self.batch: Future | None = None
        self.index = 0

    def chunk(self) -> Chunk:
        if self.batch is not None:
            try:
                return decode_chunk(self.batch.result()[self.index])
            except BrokenProcessPool:
                log.warning("an import worker died; reading %s here", self.args[0])
        return parse_chunk(*self.args)


@dataclass
class Prefetched:
    """A file's chunks from `start` on, parsed ahead by worker processes."""

    start: int
    ahead: list[_Ahead]

    def chunks(self) -> Iterator[Chunk]:
        for item in self.ahead:
            yield item.chunk()


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
        self._calls: dict[str, list] = {}  # tool_use_id → [trace_id, batch, status, has_output, seq]
        self._calls_loaded: set[str | None] = set()  # sessions whose calls are in _calls
        self._batches: dict[str, int] = {}  # trace → n_batches
        self._max_seq: dict[str, int] = {}  # trace → highest seq
        self._models: dict[str, str] = {}  # trace → model written
        self._usage: dict[str, tuple] = {}  # message id → usage row (the last line of a message wins)
        self._reasoning: dict[str, str] = {}  # tool_use_id → text before it
        self._new_calls: dict[str, dict] = {}  # calls no hook reported, written in bulk (with their results)

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
        chunks = prefetched.chunks() if usable else parse_chunks(path, offset, size, _session_dir(path, agent_file),
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
                self._session(line.session_id, line.cwd, path if not agent_file else None, ts, line.git_branch)
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
        self.conn.executemany(
            "INSERT INTO tool_calls (tool_use_id, trace_id, session_id, seq, name, input, agent_id, batch, started_at, "
            "status, output, is_error, error, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'transcript')",
            [(k, c["entry"][0], c["session"], c["entry"][4], c["name"], c["input"], c["agent"], c["entry"][1],
              c["started_at"], c["entry"][2], c["output"], c["is_error"], c["error"]) for k, c in self._new_calls.items()])
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

    def _known_calls(self, session: str | None) -> dict[str, list]:
        if session not in self._calls_loaded:
            self._calls_loaded.add(session)
            for row in self.conn.execute("SELECT tool_use_id, trace_id, batch, status, output IS NOT NULL, seq "
                                         "FROM tool_calls WHERE session_id = ?", (session,)):
                self._calls[row[0]] = list(row[1:])
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
        session = _first_session_id(path)
        state.session = session
        parent = self._parent_call(agent_id, None, session)
        if parent is None:
            task = self._agent_task(path)
            parent = self._parent_call(agent_id, task, session) if task else None
        if parent is None:
            return False
        tool_use_id, trace_id = parent
        state.trace = trace_id
        self._subagent(agent_id, trace_id, tool_use_id, state.session)
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
                self._subagent(agent_id, parent[1], parent[0], state.session)
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
            row = self.conn.execute(
                "SELECT trace_id FROM traces t WHERE session_id = ? AND prompt = ? AND source = 'hooks' "
                "AND NOT EXISTS (SELECT 1 FROM transcript_prompts p WHERE p.trace_id = t.trace_id) "
                "ORDER BY seq LIMIT 1",
                (session, prompt)).fetchone()
            trace_id = row[0] if row else (rec.uuid or f"{session}:{ts}")
        cur = self.conn.execute(
            "INSERT INTO traces (trace_id, session_id, prompt_id, seq, prompt, started_at, source) "
            "VALUES (?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM traces WHERE session_id = ?), ?, ?, 'transcript') "
            "ON CONFLICT(trace_id) DO NOTHING", (trace_id, session, rec.prompt_id, session, prompt, ts))
        if cur.rowcount:
            self.stats.traces += 1
        else:
            self.conn.execute("UPDATE traces SET source = 'both' WHERE trace_id = ? AND source = 'hooks'", (trace_id,))
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
            self.conn.execute("UPDATE traces SET model = ? WHERE trace_id = ?", (rec.model, trace_id))
            self.conn.execute("UPDATE sessions SET model = ? WHERE session_id = ?", (rec.model, state.session))
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
        if existing:  # captured by hooks too: they keep timing and batch; mark both sources
            self.conn.execute("UPDATE tool_calls SET source = 'both' WHERE tool_use_id = ? AND source = 'hooks'",
                              (rec.tool_use_id,))
            batch = existing[1] if existing[1] is not None else (state.batch_no.get(chain) if same_message else None)
        else:
            batch = state.batch_no.get(chain) if same_message else None
            if batch is None:
                self._batches[trace_id] += 1
                batch = self._batches[trace_id]
            self._insert_call(rec, trace_id, state, chain, agent, batch, ts)
            self.stats.tool_calls += 1
        state.batch_msg[chain] = rec.message_id or ""
        if batch is not None:
            state.batch_no[chain] = batch
        state.last_call[chain] = rec.tool_use_id
        self._reasoning[rec.tool_use_id] = state.pending.get(chain, "").strip()
        state.pending[chain] = state.final[chain] = ""
        self.touched.add(trace_id)

    def _insert_call(self, rec: AssistantBlock, trace_id: str, state: FileState, chain: str, agent: str | None,
                     batch: int, ts: float | None) -> None:
        """A call no hook reported: placed right after the call that preceded it in the transcript."""
        prev = self._calls.get(state.last_call.get(chain) or "")
        top = self._max_seq[trace_id]
        if prev and prev[0] == trace_id and prev[4] < top:  # in the middle of hook-captured calls
            self.conn.execute("UPDATE tool_calls SET seq = seq + 1 WHERE trace_id = ? AND seq > ?", (trace_id, prev[4]))
            for call in self._calls.values():  # buffered calls are in _calls too
                if call[0] == trace_id and call[4] > prev[4] and call is not prev:
                    call[4] += 1
            seq = prev[4] + 1
        else:
            seq = top + 1
        self._max_seq[trace_id] = top + 1
        entry = [trace_id, batch, "running", False, seq]
        self._calls[rec.tool_use_id] = entry
        self._new_calls[rec.tool_use_id] = {
            "entry": entry, "session": state.session, "name": rec.name, "input": rec.input_json,
            "agent": agent, "started_at": ts, "output": None, "is_error": 0, "error": None}

    def _result(self, rec: ToolResult, state: FileState, chain: str) -> None:
        state.pending[chain] = state.final[chain] = ""
        known = self._known_calls(state.session).get(rec.tool_use_id)
        if known is None or (known[2] != "running" and known[3]):
            return  # unknown call, or hooks already settled it: nothing to store
        known[3] = True
        new = self._new_calls.get(rec.tool_use_id)
        if new is not None:  # still buffered: settle it in memory
            new["entry"][2] = rec.status
            new.update(output=rec.output, is_error=int(rec.is_error), error=rec.error)
            return
        # hooks' outcome wins; the transcript settles calls that fired no hook (validation errors)
        self.conn.execute(
            "UPDATE tool_calls SET output = coalesce(output, ?), "
            "is_error = CASE WHEN status = 'running' THEN ? ELSE is_error END, "
            "error = CASE WHEN status = 'running' AND ? THEN ? ELSE error END, "
            "status = CASE WHEN status = 'running' THEN ? ELSE status END WHERE tool_use_id = ?",
            (rec.output, int(rec.is_error), rec.is_error, rec.error, rec.status, rec.tool_use_id))

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
        self.conn.execute(
            "UPDATE traces SET status = ?, final_response = ?, ended_at = ? WHERE trace_id = ? AND source = 'transcript'",
            (status, redact_text(final) or None, state.last_ts, state.trace))
        self.touched.add(state.trace)

    # ------------------------------------------------------------ rows

    def _session(self, session_id: str, cwd: str | None, path: Path | None, ts: float | None,
                 git_branch: str | None) -> None:
        self.conn.execute(
            "INSERT INTO sessions (session_id, cwd, transcript_path, started_at, last_event_at, git_branch) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(session_id) DO UPDATE SET cwd = coalesce(cwd, excluded.cwd), "
            "transcript_path = coalesce(transcript_path, excluded.transcript_path), "
            "git_branch = coalesce(git_branch, excluded.git_branch)",
            (session_id, cwd, str(path) if path else None, ts, ts, git_branch))

    def _subagent(self, agent_id: str, trace_id: str, tool_use_id: str, session: str | None) -> None:
        self.conn.execute(
            "INSERT INTO subagents (agent_id, session_id, trace_id, parent_tool_use_id, source) "
            "VALUES (?, ?, ?, ?, 'transcript') ON CONFLICT(agent_id) DO UPDATE SET "
            "parent_tool_use_id = coalesce(parent_tool_use_id, excluded.parent_tool_use_id), "
            "source = CASE source WHEN 'hooks' THEN 'both' ELSE source END",
            (agent_id, session, trace_id, tool_use_id))


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


# Below this many bytes to read, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 16 << 20
# A bulk import commits at least this often (live capture waits for the write lock meanwhile).
COMMIT_EVERY_S = 0.25


def default_workers() -> int:
    """Worker processes for `ccd import`: one per core but the one this process (the store's only
    writer, and at most 4 workers' match) keeps busy; none on a single core."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def import_paths(db, paths: Iterable[Path], progress: Callable[[SessionFiles], None] | None = None,
                 workers: int = 0, max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS, rescan: bool = False) -> ImportStats:
    """Import every session under these files and folders (see `import_sessions`)."""
    return import_sessions(db, discover(paths), progress, workers, max_output_chars, rescan)


def import_sessions(db, sessions: dict[str, SessionFiles], progress: Callable[[SessionFiles], None] | None = None,
                    workers: int = 0, max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
                    rescan: bool = False, committed: Callable[[set[str]], None] | None = None) -> ImportStats:
    """Import these sessions (`discover`'s); a failing one is reported and stores nothing. With
    `workers`, that many processes read, parse and redact the files ahead while this one
    assembles and stores. With `rescan`, a session whose earlier import was redacted by older
    rules (`stale_sessions`) is imported again from its first line, replacing what that import
    stored (see `forget_import`). `committed` is told, after each commit, the traces that the
    sessions it made durable changed (no later session of this import changes them again)."""
    stats = ImportStats()
    stale = stale_sessions(db, sessions) if rescan else set()
    stats.rescanned = len(stale)
    plan: dict[str, dict[Path, tuple[int, int, Path]]] = {}
    if workers >= 1:
        offsets = dict(db.execute("SELECT path, offset FROM transcript_offsets").fetchall())
        plan = {sid: _unread(files, {} if sid in stale else offsets) for sid, files in sessions.items()}
    parallel = sum(stop - start for ranges in plan.values() for start, stop, _ in ranges.values()) >= PARALLEL_MIN_BYTES
    writer = _SessionWriter(db, stats, max_output_chars, stale, committed)
    try:
        if workers >= 1 and parallel:
            _import_ahead(writer, sessions, plan, workers, progress)
        else:
            for sid, files in sessions.items():
                writer.write(sid, files)
                if progress:
                    progress(files)
    finally:
        writer.commit()
    return stats


def stale_sessions(db, sessions: dict[str, SessionFiles]) -> set[str]:
    """Of these sessions (their transcripts on disk), those holding a row their import wrote with
    older redaction rules than this cc-capture's (`redact.VERSION`)."""
    stale = set()
    for table in ("traces", "tool_calls", "subagents"):
        stale |= {sid for (sid,) in db.execute(
            f"SELECT DISTINCT session_id FROM {table} WHERE source = 'transcript' AND redactor_version < ?",
            (redact.VERSION,))}
    stale |= {sid for (sid,) in db.execute(
        "SELECT DISTINCT c.session_id FROM reasoning r JOIN tool_calls c USING (tool_use_id) "
        "WHERE r.redactor_version < ?", (redact.VERSION,))}
    return stale & set(sessions)


def forget_import(conn: sqlite3.Connection, session_id: str, files: SessionFiles | None = None) -> None:
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
    if files is not None:
        conn.executemany("DELETE FROM transcript_offsets WHERE path = ?",
                         [(str(p),) for p in ([files.main] if files.main else []) + files.agents])


def _import_ahead(writer: _SessionWriter, sessions: dict[str, SessionFiles],
                  plan: dict[str, dict[Path, tuple[int, int, Path]]], workers: int,
                  progress: Callable[[SessionFiles], None] | None) -> None:
    """Sessions in order, their chunks parsed by worker processes a bounded distance ahead."""
    window = (2 * workers + 1) * CHUNK_BYTES  # bytes read ahead: bounds the memory they hold
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=redact.configure, initargs=redact.email_rules()) as pool:
        queue: deque = deque()  # (session id, files, prefetched by path, bytes)
        unsent: list[_Ahead] = []
        unsent_bytes = ahead_bytes = 0

        def send() -> None:
            """Hand the chunks not sent yet to a worker, as one batch (one round trip)."""
            nonlocal unsent, unsent_bytes
            if not unsent:
                return
            try:
                batch = pool.submit(parse_chunks_encoded, [item.args for item in unsent])
            except BrokenProcessPool:  # a worker died: what is left is parsed here
                batch = None
            for i, item in enumerate(unsent):
                item.batch, item.index = batch, i
            unsent, unsent_bytes = [], 0

        def import_first() -> None:
            nonlocal ahead_bytes
            sid, files, prefetched, size = queue.popleft()
            if unsent:
                send()
            writer.write(sid, files, prefetched)
            ahead_bytes -= size
            if progress:
                progress(files)

        for sid, files in sessions.items():
            prefetched = {}
            for path, (start, stop, session_dir) in plan[sid].items():
                items = [_Ahead((path, at, min(at + CHUNK_BYTES, stop), session_dir, writer.max_output_chars))
                         for at in range(start, stop, CHUNK_BYTES)]
                prefetched[path] = Prefetched(start, items)
                for item in items:
                    unsent.append(item)
                    unsent_bytes += item.args[2] - item.args[1]
                    if unsent_bytes >= CHUNK_BYTES:
                        send()
            size = sum(stop - start for start, stop, _ in plan[sid].values())
            queue.append((sid, files, prefetched, size))
            ahead_bytes += size
            while ahead_bytes >= window:
                import_first()
        while queue:
            import_first()


def _unread(files: SessionFiles, offsets: dict[str, int]) -> dict[Path, tuple[int, int, Path]]:
    """(start, stop, session folder) of what is new in each file of a session, by path."""
    unread = {}
    for path, agent_file in ([(files.main, False)] if files.main else []) + [(a, True) for a in files.agents]:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            continue
        start = offsets.get(str(path), 0)
        start = 0 if size < start else start
        if size > start:
            unread[path] = (start, size, _session_dir(path, agent_file))
    return unread


class _SessionWriter:
    """Stores sessions one SAVEPOINT each, inside transactions of up to COMMIT_EVERY_S seconds:
    a failing session is recorded and rolled back alone, and a bulk import does not pay a commit
    (and the rewrite of the same index pages) per session, nor hold the write lock for long."""

    def __init__(self, db, stats: ImportStats, max_output_chars: int, forget: set[str] = frozenset(),
                 committed: Callable[[set[str]], None] | None = None) -> None:
        self.conn = db.conn
        self.stats = stats
        self.max_output_chars = max_output_chars
        self.forget = forget  # sessions whose earlier import is replaced (in the same savepoint)
        self.began: float | None = None
        self.committed = committed
        self.touched: set[str] = set()  # traces changed by the sessions of the open transaction

    def write(self, session_id: str, files: SessionFiles, prefetched: dict[Path, Prefetched] | None = None) -> None:
        if self.began is None:
            self.conn.execute("BEGIN IMMEDIATE")
            self.began = time.monotonic()
        self.conn.execute("SAVEPOINT session")
        try:
            if session_id in self.forget:
                forget_import(self.conn, session_id, files)
            importer = Importer(self.conn, self.stats, self.max_output_chars)
            importer.import_session(files, prefetched)
            self.touched |= importer.touched
        except Exception as e:  # a bug on one session must not stop the others: report it
            self.conn.execute("ROLLBACK TO session")
            log.exception("import of session %s failed", session_id)
            self.stats.failed[session_id] = f"{type(e).__name__}: {e}"
        except BaseException:  # interrupted: keep the sessions already done (their signals wait for the next pass)
            self.conn.execute("ROLLBACK TO session")
            self.conn.execute("RELEASE session")
            self.committed = None
            self.commit()
            raise
        self.conn.execute("RELEASE session")
        if time.monotonic() - self.began >= COMMIT_EVERY_S:
            self.commit()

    def commit(self) -> None:
        if self.began is not None:
            self.conn.execute("COMMIT")
            self.began = None
            touched, self.touched = self.touched, set()
            if self.committed and touched:
                self.committed(touched)
