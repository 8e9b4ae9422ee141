"""What hooks and transcripts share, below both readers: names in Claude Code's formats, and how
long texts are cut before they are stored (live capture and transcript import cut alike).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec

AGENT_TOOLS = ("Agent", "Task")  # the tools that launch a subagent
TASK_NOTIFICATION = "<task-notification>"  # a background agent finished (a prompt that continues a trace)
TASK_TAGS_RE = re.compile(r"<(task-id|tool-use-id|status|result)>(.*?)</\1>", re.S)  # of a <task-notification>
RAW_ABSENT = msgspec.Raw()  # an absent raw field; empty, so falsy

TRUNCATION_MARK = "\n…[cc-capture: truncated, {} bytes in all]"
DEFAULT_MAX_OUTPUT_CHARS = 256 * 1024  # CaptureSettings.max_output_chars


def transcript_roots() -> list[Path]:
    """Where Claude Code keeps its transcripts: ~/.claude/projects, and $CLAUDE_CONFIG_DIR/projects
    when that is set (CaptureSettings.roots() unless `transcript_roots` is configured)."""
    roots = [Path.home() / ".claude" / "projects"]
    if os.environ.get("CLAUDE_CONFIG_DIR"):
        roots.append(Path(os.environ["CLAUDE_CONFIG_DIR"]) / "projects")
    return list(dict.fromkeys(roots))


def cap_text(text: str | None, limit: int) -> str | None:
    """A text (an error, a plain output) cut to `limit` characters, with a visible marker."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + TRUNCATION_MARK.format(len(text.encode()))


def cap_output(data: bytes, limit: int) -> str:
    """A tool output as stored: its JSON, with long strings cut when it is over `limit` bytes."""
    if len(data) <= limit:
        return data.decode()
    shortened = msgspec.json.encode(shorten_strings(msgspec.json.decode(data), limit))
    if len(shortened) <= 2 * limit:
        return shortened.decode()
    return msgspec.json.encode(cap_text(data.decode(errors="replace"), limit)).decode()


def shorten_strings(value: Any, limit: int) -> Any:
    """Cut every string in a decoded JSON value to `limit` characters, with a visible marker."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + TRUNCATION_MARK.format(len(value.encode()))
    if isinstance(value, dict):
        return {k: shorten_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten_strings(v, limit) for v in value]
    return value
