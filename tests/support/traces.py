"""Traces made by hand, as the read model (cc_capture.records) holds stored ones: for tests of the
parts that read traces (signals, compare's scores) without a store."""

from __future__ import annotations

from typing import Any

from cc_capture.records import Feedback, ToolCall, Trace
from cc_capture.store import Origin


def call(name: str, input: Any, *, batch: int | None = None, output: Any = "", is_error: bool = False,
         error: str | None = None, reasoning: str | None = "", agent_id: str | None = None,
         tool_use_id: str | None = None) -> ToolCall:
    return ToolCall(tool_use_id=tool_use_id or f"{name}-{batch}-{id(input)}", name=name, input=input, output=output,
                    is_error=is_error, error=error, status="error" if is_error else "ok", reasoning=reasoning,
                    agent_id=agent_id, parent_tool_use_id=None, batch=batch, started_at=None, duration_ms=None,
                    source="hooks")


def trace(calls: list[ToolCall], answer: str | None, trace_id: str = "t", *, prompt: str | None = "p",
          status: str = "completed", duration_s: float | None = None, feedback: str | None = None) -> Trace:
    """`duration_s`: the trace ran that long (from an arbitrary start); `feedback`: 'up' or 'down'."""
    return Trace(
        trace_id=trace_id, session_id="s", prompt=prompt, started_at=None if duration_s is None else 1000.0,
        ended_at=None if duration_s is None else 1000.0 + duration_s, status=status,
        tool_sequence=[c.name for c in calls if c.agent_id is None], n_tool_calls=len(calls), final_response=answer,
        error=None, qualifies=None, origin=Origin.CLAUDE, tool_calls=calls, subagents=[], signals=None, vector=None,
        gate_reasons=[], extractor_version=None, source="hooks", model=None, synthetic=False, usage=None,
        feedback=Feedback(feedback, None, None) if feedback else None)
