"""The read model: what the store gives back (traces, tool calls, subagents, runs, dataset
manifests), as typed records.

Each record is a msgspec Struct whose fields, in order, are the keys of its `--json` form, and
whose annotations carry what each key means (`fields.py` reads them for `ccd browse`; README
documents the same keys and a test holds it to these classes). `jsonable` turns records into
what `--json` prints; `cc_capture.reads` loads them. Nothing here queries the database.
"""

from __future__ import annotations

import typing
from enum import Enum
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from cc_capture import store
from cc_capture.store import Origin

R = TypeVar("R")
TIMES = "Unix seconds in the database; ISO 8601 UTC in JSON"
SOURCE = "Where the record came from: hooks, transcript or both"


def _doc(text: str) -> Meta:
    return Meta(description=text)


class Instant(float):
    """A moment as the store keeps it (Unix seconds), so that durations are a subtraction; its
    JSON form is ISO 8601 UTC with milliseconds."""

    @classmethod
    def of(cls, seconds: float | None) -> Instant | None:
        return None if seconds is None else cls(seconds)

    def iso(self) -> str:
        return store.iso(self)


class Phase(str, Enum):
    """A training method (cc_capture.train.methods has one module for each)."""

    SFT = "sft"
    DPO = "dpo"
    GRPO = "grpo"

    @classmethod
    def parse(cls, value: str) -> "Phase":
        """The phase named `value`, or a ValueError that lists the phases."""
        try:
            return cls(value)
        except ValueError:
            names = [p.value for p in cls]
            raise ValueError(f"--phase must be {', '.join(names[:-1])} or {names[-1]}, not {value!r}") from None


class RunStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


# ---------------------------------------------------------------- traces


class ToolCall(msgspec.Struct):
    """One tool call of a trace (`traces show --json`: `tool_calls`)."""

    tool_use_id: Annotated[str, _doc("Claude's id for the call")]
    name: Annotated[str | None, _doc("The tool: Bash, Read, Edit, Grep, Agent, an MCP tool, ...")]
    input: Annotated[Any, _doc("The call's arguments (JSON), secrets redacted")]
    output: Annotated[Any, _doc("The tool's result (JSON or text), cut at max_output_chars with a marker")]
    is_error: Annotated[bool, _doc("Whether the call failed")]
    error: Annotated[str | None, _doc("The failure message of a failed call")]
    status: Annotated[str, _doc("ok, error, interrupted, not_run (permission refused), async_launched or running")]
    reasoning: Annotated[str | None, _doc("The assistant's text written just before this call (from the transcript)")]
    agent_id: Annotated[str | None, _doc("The subagent that made the call; null for the main agent")]
    parent_tool_use_id: Annotated[str | None,
                                  _doc("For a subagent's call: the Agent/Task call that started the subagent")]
    batch: Annotated[int | None,
                     _doc("Number of the assistant message that made the call: calls sharing it ran in parallel")]
    started_at: Annotated[Instant | None, _doc(f"When the call started ({TIMES})")]
    duration_ms: Annotated[int | None, _doc("How long the call ran, in milliseconds")]
    source: Annotated[str, _doc(SOURCE)]


class Subagent(msgspec.Struct):
    """A subagent started by an Agent/Task call of the trace (`traces show --json`: `subagents`)."""

    agent_id: Annotated[str, _doc("The subagent's id")]
    agent_type: Annotated[str | None, _doc("The subagent type asked for (general-purpose, Explore, ...)")]
    parent_tool_use_id: Annotated[str | None, _doc("The Agent/Task call that started it")]
    background: Annotated[bool | None,
                          _doc("Whether it ran in the background (its result came back as a task notification)")]
    started_at: Annotated[Instant | None, _doc(f"When it started ({TIMES})")]
    ended_at: Annotated[Instant | None, _doc(f"When it stopped ({TIMES})")]
    final_response: Annotated[str | None, _doc("The subagent's final answer, Markdown")]


class Usage(msgspec.Struct):
    """Token usage of a trace, summed over its assistant messages."""

    messages: int
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_creation_tokens: int | None


class Feedback(msgspec.Struct):
    """The user's rating of a trace (`ccd rate`)."""

    rating: str  # up | down
    note: str | None
    rated_at: Instant | None


class TraceSummary(msgspec.Struct):
    """A trace as `traces list --json` gives it: one user prompt and what became of it."""

    trace_id: Annotated[str, _doc(
        "One user prompt and everything the agent did for it (the prompt id, or an id made for it)")]
    session_id: Annotated[str, _doc("The Claude Code session the trace belongs to")]
    prompt: Annotated[str | None, _doc("The user's prompt, secrets redacted")]
    started_at: Annotated[Instant | None, _doc(f"When the prompt was submitted ({TIMES})")]
    ended_at: Annotated[Instant | None, _doc(f"When the agent stopped ({TIMES}); null while open")]
    status: Annotated[str, _doc("open, completed, failed (StopFailure) or interrupted")]
    tool_sequence: Annotated[list[str | None], _doc("The main agent's tool names in the order the model called them")]
    n_tool_calls: Annotated[int, _doc("Tool calls of the trace, subagents' included")]
    final_response: Annotated[str | None, _doc("The final answer (Stop's last_assistant_message), Markdown")]
    error: Annotated[str | None, _doc("Why the turn failed (StopFailure), if it did")]
    qualifies: Annotated[bool | None, _doc(
        "Whether the quality gates let the trace into training; null until its signals are computed")]
    origin: Annotated[Origin, _doc("Who answered: claude, or local (the local model inside Claude Code: "
                                   "`ccd compare`, `ccd local`; never training data)")]


class SearchHit(TraceSummary):
    """A trace found by `ccd search`, with the words that matched."""

    snippet: Annotated[str, _doc("The matching words in context, each in [brackets]")]


class Trace(TraceSummary):
    """A trace with everything stored about it (`traces show --json`); what datasets and signals read."""

    tool_calls: Annotated[list[ToolCall], _doc("Every tool call of the trace in order (main agent and subagents)")]
    subagents: Annotated[list[Subagent], _doc("Subagents started by Agent/Task calls of the trace")]
    signals: Annotated[dict[str, Any] | None, _doc(
        "Reasoning signals extracted from the trace (README: Signals and quality gates)")]
    vector: Annotated[list[float] | None, _doc("The 35-dimension behaviour vector, each in [0, 1]")]
    gate_reasons: Annotated[list[str], _doc("Why the trace qualifies or is excluded, one reason a line")]
    extractor_version: Annotated[int | None, _doc(
        "Version of the signal extractor that computed signals, vector and gate")]
    source: Annotated[str, _doc(SOURCE)]
    model: Annotated[str | None, _doc("The model that answered, from the transcript")]
    synthetic: Annotated[bool, _doc("Made up by `ccd bootstrap`, not captured (never evaluated on)")]
    usage: Annotated[Usage | None, _doc(
        "Token usage: {messages, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens}")]
    feedback: Annotated[Feedback | None, _doc("The user's rating: {rating, note, rated_at} or null")]
    vector_names: Annotated[list[str], _doc(
        "The name of each vector dimension (filled in by `ccd traces show`)")] = []

    @property
    def main_calls(self) -> list[ToolCall]:
        """The main agent's calls (subagents' own calls stay inside their subagent)."""
        return [c for c in self.tool_calls if c.agent_id is None]

    @property
    def duration_s(self) -> float | None:
        return self.ended_at - self.started_at if self.started_at is not None and self.ended_at is not None else None


# ---------------------------------------------------------------- datasets and runs


class TokenStats(msgspec.Struct):
    total: int
    max: int
    mean: float
    estimate: str  # how tokens were counted


class Inference(msgspec.Struct):
    """The system prompt and tools a dataset trains on: those the local model gets (cc_capture.datasets.inference)."""

    system_prompt: str  # the choice: compact | claude_code
    source: str  # calibration | fallback
    claude_version: str | None
    system_prompt_chars: int


class DatasetManifest(msgspec.Struct, kw_only=True):
    """What a dataset folder holds (`manifest.json`; a run keeps its dataset's). Keys added since the
    first datasets have defaults, so older runs' manifests still read."""

    kind: str  # sft | dpo
    created_at: str  # ISO 8601 UTC
    extractor_version: int
    counts: dict[str, int]  # examples per split
    traces: int
    trace_ids_sha256: str
    captured_until: float | None = None  # the newest capture time among its traces (Unix seconds)
    sessions: dict[str, int]  # sessions per split
    duplicates_dropped: int
    redacted_again: int
    include_synthetic: bool
    origins: dict[str, int] | None  # DPO pairs per origin
    tokens: TokenStats
    settings: dict[str, Any]
    tools: list[str]
    inference: Inference | None = None
    # what `ccd compare` gave a DPO set: its preference pairs per split (null for SFT), and how many of
    # the set's sessions a comparison spent for evaluation (in train for good)
    compare_pairs: dict[str, int] | None = None
    spent_sessions: int = 0


class Run(msgspec.Struct):
    """A training run (`runs list|show --json`)."""

    run_id: Annotated[str, _doc("The run's id")]
    phase: Annotated[Phase, _doc("sft, dpo or grpo")]
    status: Annotated[RunStatus, _doc("The run's state (queued, running, completed, failed, interrupted)")]
    created_at: Annotated[Instant, _doc(f"When it was created ({TIMES})")]
    started_at: Annotated[Instant | None, _doc(f"When it started ({TIMES})")]
    ended_at: Annotated[Instant | None, _doc(f"When it ended ({TIMES})")]
    pid: Annotated[int | None, _doc("The training process")]
    pid_start: Annotated[str | None, _doc("When that process started (opaque: tells a reused pid apart)")]
    backend: Annotated[str | None, _doc("unsloth or transformers")]
    config: Annotated[dict[str, Any], _doc("The training settings (JSON)")]
    dataset_path: Annotated[str | None, _doc("The dataset folder trained on")]
    dataset_manifest: Annotated[DatasetManifest | None, _doc("That dataset's manifest (JSON)")]
    metrics: Annotated[dict[str, Any], _doc("Losses, steps, tokens/s, rewards (JSON)")]
    artifacts: Annotated[dict[str, Any], _doc("Adapter, checkpoints, log (JSON)")]
    error: Annotated[str | None, _doc("Why it failed")]
    log_path: Annotated[str | None, _doc("The run's log file")]


# ---------------------------------------------------------------- their JSON form and descriptions


def _encode(value: Any) -> Any:
    if isinstance(value, Instant):
        return value.iso()
    raise NotImplementedError(f"{type(value).__name__} has no JSON form")


def jsonable(value: Any) -> Any:
    """Records (or lists and dicts holding them) as the plain values `--json` prints."""
    return msgspec.to_builtins(value, enc_hook=_encode)


def encode(value: Any) -> bytes:
    """A record as JSON (what the store keeps in a JSON column)."""
    return msgspec.json.encode(value, enc_hook=_encode)


def _instant(kind: type, value: Any) -> Any:
    if kind is Instant:
        return Instant(value)
    raise NotImplementedError(kind.__name__)


def replace_text(record: R, old: str, new: str) -> R:
    """The record with `old` written as `new` in every string it holds, its free-form values' included."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(old, new)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        return value

    return msgspec.convert(walk(msgspec.to_builtins(record, enc_hook=float)), type(record), dec_hook=_instant)


def keys(record: type[msgspec.Struct]) -> list[str]:
    """The `--json` keys of a record, in order."""
    return list(record.__struct_fields__)


def descriptions(record: type[msgspec.Struct]) -> dict[str, str]:
    """What each `--json` key of a record means, from its annotations."""
    hints = typing.get_type_hints(record, include_extras=True)
    out = {}
    for name in record.__struct_fields__:
        metas = [m for m in getattr(hints[name], "__metadata__", ()) if isinstance(m, Meta)]
        if metas and metas[0].description:
            out[name] = metas[0].description
    return out
