"""A trace as a chat conversation with tools, the shape trl's SFT and DPO trainers read.

Each assistant step is its reasoning text plus the tool calls of one assistant message (one
batch), followed by one `tool` message per call; the final answer closes the conversation.
Tool-call arguments are JSON strings, never dicts: Arrow would merge the keys of every tool's
arguments into one struct. They are written as Go's json.Marshal writes them, so the training
template and Ollama's template (templates/) render the same text. Subagents' own calls stay inside their subagent: the parent sees the
Agent call and its result, as Claude did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cc_capture.records import Trace

TRUNCATION_MARK = "\n…[truncated: {} more characters]"
CHARS_PER_TOKEN = 4  # a rough, tokenizer-free estimate: budgets are in tokens, applied in characters

def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def message(role: str, content: str, tool_calls: list[dict] | None = None, name: str | None = None,
            tool_call_id: str | None = None) -> dict[str, Any]:
    """One message with every key present (Arrow needs one schema for all rows)."""
    return {"role": role, "content": content, "tool_calls": tool_calls, "name": name, "tool_call_id": tool_call_id}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("stdout", "content", "text", "result"):
            if isinstance(value.get(key), str) and value[key]:
                parts = [value[key]]
                if value.get("stderr"):
                    parts.append(value["stderr"])
                return "\n".join(parts)
        if isinstance(value.get("file"), dict) and isinstance(value["file"].get("content"), str):
            return value["file"]["content"]
    if isinstance(value, list):
        texts = [b.get("text", "") for b in value if isinstance(b, dict) and b.get("type") == "text"]
        if texts:
            return "\n".join(texts)
    return json.dumps(value, ensure_ascii=False)


def arguments_json(args: Any) -> str:
    """Tool-call arguments as Go's json.Marshal prints them (what Ollama renders at inference):
    compact, keys sorted, and <, >, & escaped."""
    text = json.dumps(args, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def truncate(text: str, max_tokens: int) -> str:
    limit = max_tokens * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATION_MARK.format(len(text) - limit)


@dataclass
class Step:
    """One assistant message: its text and its tool calls, then their results."""

    text: str
    calls: list[dict] = field(default_factory=list)  # {id, name, arguments (JSON string), result}

    def messages(self) -> list[dict[str, Any]]:
        tool_calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                      for c in self.calls] or None
        out = [message("assistant", self.text, tool_calls)]
        out += [message("tool", c["result"], name=c["name"], tool_call_id=c["id"]) for c in self.calls]
        return out

    def tokens(self) -> int:
        return sum(estimate_tokens(m["content"] or "") + sum(estimate_tokens(tc["function"]["arguments"])
                                                              for tc in m["tool_calls"] or [])
                   for m in self.messages())


def steps_of(trace: Trace, max_tool_output_tokens: int) -> list[Step]:
    """The main agent's steps of a trace, one per batch of calls."""
    steps: list[Step] = []
    last_batch: object = object()
    for c in trace.main_calls:
        result = c.error if c.is_error else _text(c.output)
        if c.is_error and result:
            result = f"Error: {result}"
        call = {"id": c.tool_use_id, "name": c.name,
                "arguments": arguments_json(c.input if c.input is not None else {}),
                "result": truncate(result or "", max_tool_output_tokens)}
        if c.batch is not None and c.batch == last_batch and steps:
            steps[-1].calls.append(call)
        else:
            steps.append(Step(c.reasoning or "", [call]))
        last_batch = c.batch
    return steps


def conversations(trace: Trace, max_tool_output_tokens: int, max_tokens: int, system_prompt: str) -> list[list[dict]]:
    """The trace as one conversation, or several when it is longer than `max_tokens`: split at step
    boundaries (each part restates the prompt and what was done before), never cut at the end.
    `system_prompt`: the one the model gets at inference (`datasets.inference`)."""
    head = [message("system", system_prompt), message("user", trace.prompt or "")]
    steps = steps_of(trace, max_tool_output_tokens)
    final = message("assistant", trace.final_response or "")
    budget = max_tokens - sum(estimate_tokens(m["content"]) for m in head) - estimate_tokens(final["content"])
    parts: list[list[Step]] = [[]]
    used = 0
    for step in steps:
        cost = step.tokens()
        if parts[-1] and used + cost > budget:
            parts.append([])
            used = 0
        parts[-1].append(step)
        used += cost
    out = []
    done: list[str] = []
    for i, part in enumerate(parts):
        msgs = list(head)
        if done:
            msgs.append(message("system", f"Steps already taken for this task: {', '.join(done)}. Continue from there."))
        for step in part:
            msgs += step.messages()
        if i == len(parts) - 1:
            msgs.append(final)
        out.append(msgs)
        done += [c["name"] for step in part for c in step.calls]
    return out


def tool_schemas(traces: list[Trace]) -> list[dict[str, Any]]:
    """JSON schemas of the tools, inferred from the calls seen: each argument's type, and which are
    present in every call (required). Only when no calibration gives Claude Code's own."""
    seen: dict[str, list[dict]] = {}
    for t in traces:
        for c in t.main_calls:
            if c.name:
                seen.setdefault(c.name, []).append(c.input if isinstance(c.input, dict) else {})
    type_names = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}
    schemas = []
    for name in sorted(seen):
        inputs = seen[name]
        props: dict[str, dict] = {}
        for args in inputs:
            for key, value in args.items():
                props.setdefault(key, {"type": type_names.get(type(value), "string")})
        required = sorted(k for k in props if all(k in a for a in inputs))
        schemas.append({"type": "function", "function": {
            "name": name, "description": f"The {name} tool of Claude Code.",
            "parameters": {"type": "object", "properties": dict(sorted(props.items())), "required": required}}})
    return schemas


def next_step_prompts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GRPO rows from one conversation: the conversation up to each assistant step that calls tools,
    and Claude's calls at that step as the reference the reward compares with."""
    rows = []
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and m["tool_calls"]:
            reference = [{"name": tc["function"]["name"], "parameters": json.loads(tc["function"]["arguments"])}
                         for tc in m["tool_calls"]]
            rows.append({"prompt": messages[:i], "reference": json.dumps(reference, ensure_ascii=False)})
    return rows
