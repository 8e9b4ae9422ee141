"""What the local model sees inside Claude Code, so that it is trained and evaluated on exactly that.

Claude Code sends a model its system prompt (text blocks, which Ollama's `/v1/messages` joins into
one system message without a separator) and its tool definitions (`name`, `description`,
`input_schema`, which Ollama passes on as a function's `parameters`). `ccd calibrate` records both
per Claude Code version and system-prompt choice (`[local] system_prompt`); a dataset takes the
latest calibration of the configured choice, so the prompt and tools in its rows are those the
model gets in `ccd local` and `ccd compare`. Without a calibration it falls back to the compact
prompt alone and tool schemas inferred from the calls seen, and says so (`source: fallback`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from cc_capture import store
from cc_capture.config import SystemPromptChoice
from cc_capture.datasets.conversation import tool_schemas
from cc_capture.records import Trace

COMPACT_SYSTEM_PROMPT = (
    "You are a coding agent working in the user's project. Think briefly, then use the tools to inspect and "
    "change the project; call several tools at once when they are independent; verify your work; answer concisely."
)


class Source(str, Enum):
    CALIBRATION = "calibration"  # recorded from Claude Code by `ccd calibrate`
    FALLBACK = "fallback"  # no calibration: the compact prompt alone, tools inferred from the calls seen


@dataclass(frozen=True)
class ModelView:
    """The system prompt and tools (in the datasets' function form) the local model is given."""

    choice: SystemPromptChoice
    system_prompt: str
    tools: list[dict[str, Any]]
    source: Source
    claude_version: str | None

    def as_json(self) -> dict[str, Any]:
        return {"system_prompt": self.choice.value, "source": self.source.value, "claude_version": self.claude_version,
                "system_prompt_chars": len(self.system_prompt)}


def system_prompt_flag(choice: SystemPromptChoice) -> str | None:
    """The `--system-prompt` Claude Code runs the local model with: the compact prompt, or none
    (Claude Code's own)."""
    return COMPACT_SYSTEM_PROMPT if choice is SystemPromptChoice.COMPACT else None


def system_text(blocks: Any) -> str:
    """The system prompt as Ollama hands it to the model: a string as is, text blocks joined with nothing between."""
    if isinstance(blocks, str):
        return blocks
    return "".join(b.get("text", "") for b in blocks or [] if isinstance(b, dict) and b.get("type") == "text")


def function_tools(definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Claude Code's tool definitions in the function form the chat templates read (as Ollama converts them)."""
    return [{"type": "function", "function": {
        "name": d["name"], "description": d.get("description") or "",
        "parameters": d.get("input_schema") or {"type": "object", "properties": {}}}} for d in definitions]


def for_datasets(db: store.Database, choice: SystemPromptChoice, traces: list[Trace]) -> ModelView:
    """The view of the latest calibration of `choice`, else the fallback built from `traces`."""
    found = store.calibrations(db, choice.value)
    if found:
        c = found[0]
        return ModelView(choice, system_text(c["system"]), function_tools(c["tools"]), Source.CALIBRATION,
                         c["claude_version"])
    return ModelView(choice, COMPACT_SYSTEM_PROMPT, tool_schemas(traces), Source.FALLBACK, None)
