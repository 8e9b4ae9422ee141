"""Claude Code transcripts of every known version, read line by line into typed records.

Layouts: 1.0.x sessions with subagent conversations inline (`isSidechain`); 2.0.x flat
`agent-*.jsonl` files beside the session; 2.1.x `<session>/subagents/agent-<id>.jsonl` (with
`.meta.json`). Assistant messages may be streamed one content block per line under a repeated
`message.id`; compaction writes `system/compact_boundary`, an `isCompactSummary` user line and
an `agent-acompact-*` file; big tool results may be spilled to `<session>/tool-results/`.
Bookkeeping lines (progress, attachment, queue-operation, file-history-snapshot, summary,
ai-title, api-request*, ...) and unknown types are counted and skipped, never fatal.

`parse_line` is pure, and so is `parse_chunk` (the lines of a byte range of a file), which
import workers run in parallel. What they return is what the store keeps: tool inputs and
results come out redacted. The importer keeps the per-file state (offset, current prompt,
pending text) so reading resumes from a stored offset.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Iterator

import msgspec

from cc_capture.claude_format import DEFAULT_MAX_OUTPUT_CHARS, RAW_ABSENT, TASK_NOTIFICATION, cap_output, cap_text
from cc_capture.redact import redact_json, redact_text
from cc_capture.transcripts.reader import lines_between

BOOKKEEPING = {
    "progress", "attachment", "queue-operation", "file-history-snapshot", "summary", "ai-title", "custom-title",
    "api-request", "api-request-shape", "api-request-blob", "tools-used", "last-prompt", "atis-latch", "cost-state",
    "mode", "pr-link", "tag", "x-metadata",
}
INTERRUPT_RE = re.compile(r"^\[Request interrupted by user")
_COMMAND_RE = re.compile(r"<command-name>(.*?)</command-name>.*?(?:<command-args>(.*?)</command-args>|$)", re.S)
# Claude Code's own marker for a result spilled to a file: the whole result starts with it, e.g.
# "<persisted-output>\nOutput too large (53.6KB). Full output saved to: /home/u/.claude/projects/
# -w/<session>/tool-results/toolu_01X.txt\n\nPreview (first 2KB):\n..." (2.1.x; Windows paths too).
_SPILL_RE = re.compile(r"\A<persisted-output>\s*Output too large[^\n]*?Full output saved to: ([^\n]+)")
# results of calls that never ran: permission not granted, or rejected by the user
_NOT_RUN_RE = re.compile(r"^Claude requested permissions? to |^The user doesn't want to proceed with this tool use")
# a file is parsed in ranges of this many bytes (a unit of parallel work; bounds memory)
CHUNK_BYTES = 4 << 20


class _Block(msgspec.Struct):
    type: str = ""
    text: str | None = None
    thinking: str | None = None
    id: str | None = None
    name: str | None = None
    input: msgspec.Raw = RAW_ABSENT
    tool_use_id: str | None = None
    content: msgspec.Raw = RAW_ABSENT
    is_error: bool | None = None


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Message(msgspec.Struct):
    id: str | None = None
    role: str | None = None
    model: str | None = None
    content: list[_Block] | str | None = None
    usage: _Usage | None = None
    stop_reason: str | None = None


class _ProgressData(msgspec.Struct):
    type: str | None = None
    agentId: str | None = None


class _Line(msgspec.Struct):
    type: str = ""
    subtype: str | None = None
    uuid: str | None = None
    parentUuid: str | None = None
    sessionId: str | None = None
    isSidechain: bool | None = None
    isMeta: bool | None = None
    isCompactSummary: bool | None = None
    agentId: str | None = None
    promptId: str | None = None
    timestamp: str | None = None
    cwd: str | None = None
    version: str | None = None
    gitBranch: str | None = None
    message: _Message | None = None
    toolUseResult: msgspec.Raw = RAW_ABSENT
    data: _ProgressData | None = None
    parentToolUseID: str | None = None


_decoder = msgspec.json.Decoder(_Line)


# ---------------------------------------------------------------- records
# msgspec Structs: cheap to build, and a chunk parsed by a worker process crosses back to the
# importer as compact MessagePack (tagged by record type).


class Prompt(msgspec.Struct, tag="prompt"):
    uuid: str | None
    prompt_id: str | None
    text: str
    sidechain_root: bool  # the first line of an inline (1.0.x) subagent conversation
    command: bool = False  # a slash command (`<command-name>`): a trace only once the model answers it


class Notification(msgspec.Struct, tag="notification"):
    """A `<task-notification>`: a background agent finished; it continues the launching trace."""

    text: str
    prompt_id: str | None


class AssistantBlock(msgspec.Struct, tag="assistant"):
    message_id: str | None
    model: str | None
    kind: str  # text | thinking | tool_use
    text: str
    tool_use_id: str | None
    name: str | None
    input_json: str | None  # redacted
    usage: _Usage | None


class ToolResult(msgspec.Struct, tag="result"):
    """A call's outcome as the store keeps it, secrets out."""

    tool_use_id: str
    is_error: bool
    status: str  # ok | error | not_run
    output: str | None  # JSON: the structured result (toolUseResult), else the text; None if it failed
    error: str | None  # the text of a failure


class Interrupt(msgspec.Struct, tag="interrupt"):
    pass


class AgentLink(msgspec.Struct, tag="link"):
    """2.1.x progress lines name the Task/Agent call a subagent works for."""

    agent_id: str
    tool_use_id: str


Record = Prompt | Notification | AssistantBlock | ToolResult | Interrupt | AgentLink


class Line(msgspec.Struct):
    """One transcript line: its common fields and what it holds."""

    kind: str  # prompt | assistant | results | notification | interrupt | link | skip | bad
    reason: str | None  # why skipped
    uuid: str | None
    parent_uuid: str | None
    session_id: str | None
    agent_id: str | None
    sidechain: bool
    ts: float | None  # the line's timestamp, epoch seconds
    cwd: str | None
    version: str | None
    records: list[Record]
    git_branch: str | None = None  # the branch Claude Code saw checked out (absent outside git, and in old versions)


class Chunk(msgspec.Struct):
    """The lines of a file that start in [start, stop), parsed; skipped lines only counted."""

    start: int
    end: int  # just past the last complete line read (`start` if none)
    lines: list[Line] = []
    n_lines: int = 0
    skipped: dict[str, int] = {}


_chunk_decoder = msgspec.msgpack.Decoder(Chunk)


def decode_chunk(data: bytes) -> Chunk:
    """A chunk from `parse_chunks_encoded`."""
    return _chunk_decoder.decode(data)


def parse_chunk(path: Path, start: int, stop: int, session_dir: Path | None,
                max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS) -> Chunk:
    chunk = Chunk(start, start)
    skipped: Counter = Counter()
    for raw, end in lines_between(path, start, stop, max_output_chars):
        chunk.end = end
        chunk.n_lines += 1
        line = parse_line(raw, session_dir, max_output_chars)
        if line.kind in ("skip", "bad"):
            skipped[line.reason] += 1
        else:
            chunk.lines.append(line)
    chunk.skipped = dict(skipped)
    return chunk


def parse_chunks_encoded(ranges: list[tuple[Path, int, int, Path | None, int]]) -> list[bytes]:
    """`parse_chunk` in a worker process, for several ranges in one round trip (files are often
    small): each chunk as MessagePack (see `decode_chunk`)."""
    return [msgspec.msgpack.encode(parse_chunk(*args)) for args in ranges]


def parse_chunks(path: Path, start: int, stop: int, session_dir: Path | None,
                 max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS) -> Iterator[Chunk]:
    """A file's lines from `start` (a line boundary) to `stop`, a chunk at a time."""
    for at in range(start, stop, CHUNK_BYTES):
        yield parse_chunk(path, at, min(at + CHUNK_BYTES, stop), session_dir, max_output_chars)


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _text_of(content: msgspec.Raw) -> str:
    """A tool_result's content as text: a string, or its text blocks joined."""
    if not content:
        return ""
    value = msgspec.json.decode(content)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(b.get("text", "") for b in value if isinstance(b, dict) and b.get("type") == "text")
    return msgspec.json.encode(value).decode()


def _command_text(text: str) -> str | None:
    """A slash command as the user typed it (`/name args`), as live capture records it; None if
    the text is not one."""
    m = _COMMAND_RE.search(text) if "<command-name>" in text else None
    if m is None:
        return None
    return " ".join(x.strip() for x in (m.group(1), m.group(2) or "") if x and x.strip())


def unspill(text: str, session_dir: Path | None, limit: int = 1 << 20) -> str:
    """A result Claude Code spilled to `tool-results/`, read back from there.

    Only Claude Code's own marker is followed (at the start of the result, not a path anywhere in
    the text: an `ls` output or a web page may name any file), and only to a file that resolves
    inside this session's `tool-results/` folder (no `..`, no symlink out, no other session)."""
    m = _SPILL_RE.match(text) if session_dir is not None and text.startswith("<persisted-output>") else None
    if not m:
        return text
    parts = re.split(r"[\\/]", m.group(1).strip())
    if len(parts) < 3 or parts[-2] != "tool-results" or parts[-3] != session_dir.name:
        return text
    folder = session_dir / "tool-results"
    try:
        path = (folder / parts[-1]).resolve(strict=True)
        inside = path.parent == folder.resolve(strict=True) and path.is_file()
    except (OSError, RuntimeError):  # missing, unreadable, a symlink loop
        return text
    if not inside:
        return text
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError:
        return text
    body = data[:limit].decode("utf-8", errors="replace")
    return body + ("\n…[cc-capture: truncated]" if len(data) > limit else "")


def _stored_result(block: _Block, session_dir: Path | None, structured: str | None, limit: int) -> ToolResult:
    """Redact only what is stored (a failure's text, else the structured result, else the text),
    then cut it to `limit` as live capture does. The text is read (and a spilled one fetched) only
    when it is what is stored."""
    tool_use_id = block.tool_use_id or ""
    if block.is_error:
        text = unspill(_text_of(block.content), session_dir)
        return ToolResult(tool_use_id, True, "not_run" if _NOT_RUN_RE.match(text) else "error", None,
                          cap_text(redact_text(text), limit))
    if structured is not None:
        output = redact_json(structured)
    else:
        output = msgspec.json.encode(redact_text(unspill(_text_of(block.content), session_dir))).decode()
    if len(output) > limit // 4:  # it may be over the limit in bytes
        output = cap_output(output.encode(), limit)
    return ToolResult(tool_use_id, False, "ok", output, None)


def parse_line(raw: bytes, session_dir: Path | None = None, max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS) -> Line:
    """One transcript line as typed records. A line that is not valid UTF-8 (one bad byte) is read
    with the bad bytes replaced (U+FFFD): it costs that line's byte, never the session."""
    try:
        line = _parse_line(raw, session_dir, max_output_chars)
    except (UnicodeDecodeError, msgspec.DecodeError):  # in a part read raw (tool input, a result, structured result)
        line = None
    if line is not None and line.kind != "bad":
        return line
    fixed = raw.decode("utf-8", errors="replace").encode()
    if fixed == raw and line is not None:
        return line  # unreadable for another reason
    return _parse_line(fixed, session_dir, max_output_chars)


def _parse_line(raw: bytes, session_dir: Path | None, max_output_chars: int) -> Line:
    try:
        d = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Line("bad", "unreadable line", None, None, None, None, False, None, None, None, [])
    if d.type == "progress" and d.data is not None and d.data.type == "agent_progress" and d.data.agentId \
            and d.parentToolUseID:
        return Line("link", None, d.uuid, d.parentUuid, d.sessionId, d.agentId, bool(d.isSidechain),
                    _ts(d.timestamp), d.cwd, d.version, [AgentLink(d.data.agentId, d.parentToolUseID)])
    if d.type in BOOKKEEPING:  # most lines: skipped before anything else is built
        return Line("skip", d.type, None, None, None, None, False, None, None, None, [])
    ts = _ts(d.timestamp)
    common = dict(uuid=d.uuid, parent_uuid=d.parentUuid, session_id=d.sessionId, agent_id=d.agentId,
                  sidechain=bool(d.isSidechain), ts=ts, cwd=d.cwd, version=d.version, git_branch=d.gitBranch or None)

    def skip(reason: str) -> Line:
        return Line("skip", reason, records=[], **common)

    if d.type == "system":
        return skip(f"system/{d.subtype}" if d.subtype else "system")
    if d.type not in ("user", "assistant"):
        return skip(f"unknown type {d.type!r}")
    msg = d.message
    if msg is None:
        return skip(f"{d.type} without message")
    if d.type == "assistant":
        if not isinstance(msg.content, list):
            return skip("assistant without content blocks")
        blocks = []
        for b in msg.content:
            if b.type == "text":
                blocks.append(AssistantBlock(msg.id, msg.model, "text", b.text or "", None, None, None, msg.usage))
            elif b.type == "thinking":  # the text is often empty (redacted): kept empty, never invented
                blocks.append(AssistantBlock(msg.id, msg.model, "thinking", b.thinking or "", None, None, None,
                                             msg.usage))
            elif b.type == "tool_use" and b.id:
                blocks.append(AssistantBlock(msg.id, msg.model, "tool_use", "", b.id, b.name,
                                             redact_json(bytes(b.input).decode()) if b.input else "{}", msg.usage))
        if not blocks:  # an empty or unknown-block message still carries usage
            blocks.append(AssistantBlock(msg.id, msg.model, "text", "", None, None, None, msg.usage))
        return Line("assistant", None, records=blocks, **common)
    # user lines
    if d.isCompactSummary:
        return skip("compact summary")
    if d.isMeta:
        return skip("meta")
    content = msg.content
    if isinstance(content, str):
        texts, results = [content], []
    else:
        texts = [b.text or "" for b in content or [] if b.type == "text"]
        results = [b for b in content or [] if b.type == "tool_result" and b.tool_use_id]
    if results:
        structured = bytes(d.toolUseResult).decode() if d.toolUseResult else None
        if structured is not None and structured[:1] not in "{[":
            structured = None  # a plain string: the result's text says the same
        records = [_stored_result(b, session_dir, structured, max_output_chars) for b in results]
        return Line("results", None, records=records, **common)
    text = "\n".join(t for t in texts if t)
    if not text.strip():
        return skip("empty user line")
    if INTERRUPT_RE.match(text.strip()):
        return Line("interrupt", None, records=[Interrupt()], **common)
    if text.lstrip().startswith(TASK_NOTIFICATION):
        return Line("notification", None, records=[Notification(text, d.promptId)], **common)
    if text.lstrip().startswith(("<local-command-stdout>", "<local-command-stderr>", "<bash-stdout>", "<bash-stderr>")):
        return skip("local command output")
    root = bool(d.isSidechain) and d.parentUuid is None
    command = _command_text(text)
    prompt = Prompt(d.uuid, d.promptId, text if command is None else command, root, command is not None)
    return Line("prompt", None, records=[prompt], **common)
