"""The typed view of a Claude Code hook payload: only the fields assembly reads.

Tool inputs and outputs stay `msgspec.Raw` (undecoded JSON), so a 50 MB tool output costs one
scan, not a tree of Python objects. Unknown fields are ignored; the full redacted payload is
kept in the `events` table anyway.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from cc_capture.claude_format import RAW_ABSENT


class BatchCall(msgspec.Struct):
    tool_use_id: str | None = None
    tool_name: str | None = None
    tool_input: msgspec.Raw = RAW_ABSENT
    tool_response: msgspec.Raw = RAW_ABSENT


class HookEvent(msgspec.Struct):
    hook_event_name: str
    session_id: str | None = None
    transcript_path: str | None = None
    cwd: str | None = None
    prompt_id: str | None = None
    permission_mode: str | None = None
    source: str | None = None
    model: str | None = None
    prompt: str | None = None
    tool_name: str | None = None
    tool_input: msgspec.Raw = RAW_ABSENT
    tool_response: msgspec.Raw = RAW_ABSENT
    tool_use_id: str | None = None
    tool_calls: list[BatchCall] | None = None
    duration_ms: float | None = None
    error: msgspec.Raw = RAW_ABSENT
    error_details: msgspec.Raw = RAW_ABSENT
    is_interrupt: bool | None = None
    agent_id: str | None = None
    agent_type: str | None = None
    agent_transcript_path: str | None = None
    last_assistant_message: str | None = None
    reason: str | None = None


class AgentLaunch(msgspec.Struct):
    """The parts of an Agent/Task tool_response that link a subagent to its call."""

    agentId: str | None = None
    isAsync: bool | None = None
    status: str | None = None


_decoder = msgspec.json.Decoder(HookEvent)
_agent_decoder = msgspec.json.Decoder(AgentLaunch)


def decode(raw: bytes) -> HookEvent:
    return _decoder.decode(raw)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    return value


def with_lone_surrogates_replaced(raw: bytes) -> Any | None:
    """A payload whose strings hold a lone UTF-16 surrogate escape (`"\\ud83d"`: JavaScript cuts
    strings inside an emoji, and JSON.parse accepts it) decoded with each one replaced by U+FFFD;
    None if that is not what made it undecodable. Only the failure path pays for this."""
    if b"\\u" not in raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return _replace_lone_surrogates(value)


def decode_agent_launch(raw: msgspec.Raw) -> AgentLaunch | None:
    if not bytes(raw).lstrip().startswith(b"{"):
        return None
    try:
        return _agent_decoder.decode(raw)
    except msgspec.DecodeError:
        return None


def raw_json(raw: msgspec.Raw) -> str | None:
    """A raw JSON value as JSON text, None when absent."""
    return bytes(raw).decode() if raw else None


def raw_text(raw: msgspec.Raw) -> str | None:
    """A raw JSON value as text: strings unquoted, anything else as its JSON; None when absent."""
    if not raw:
        return None
    data = bytes(raw)
    if data.startswith(b'"'):
        return msgspec.json.decode(data, type=str)
    if data == b"null":
        return None
    return data.decode()
