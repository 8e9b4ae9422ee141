"""One trace as a tree a person reads: the prompt, then each step in order (the text the
assistant wrote, the calls of that assistant message side by side), subagents nested under the
call that started them, the final answer. Built from a trace's JSON form (`records.jsonable` of
`reads.trace`), so the browser shows exactly what `ccd traces show --json` returns; no Datasette here, so it is tested on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

# Outputs longer than this are shown cut, with the whole text one click away.
PREVIEW_CHARS = 1500

# CommonMark with tables; raw HTML in the text is escaped, not rendered, and markdown-it refuses
# javascript:/vbscript:/file: links. Captured text is untrusted: a tool output can hold anything.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown(text: str | None) -> Markup:
    """Markdown to HTML that is safe to put in a page."""
    return Markup(_markdown.render(text or ""))


@dataclass
class Text:
    """A value shown in a fold: a preview, and the full text when the preview is cut."""

    full: str
    preview: str
    cut: bool

    @classmethod
    def of(cls, value: Any) -> "Text":
        if value is None:
            full = ""
        elif isinstance(value, str):
            full = value
        elif isinstance(value, dict) and set(value) <= {"stdout", "stderr", "interrupted", "isImage",
                                                        "noOutputExpected", "returnCodeInterpretation"}:
            full = "\n".join(v for v in (value.get("stdout"), value.get("stderr")) if v)  # Bash: what it printed
        else:
            full = json.dumps(value, indent=2, ensure_ascii=False)
        return cls(full, full[:PREVIEW_CHARS], len(full) > PREVIEW_CHARS)


@dataclass
class Call:
    call: dict[str, Any]
    input: Text
    output: Text
    subagents: list["Agent"] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line: the argument people look for first (the command, the file, the pattern)."""
        args = self.call["input"]
        if isinstance(args, dict):
            for key in ("command", "file_path", "pattern", "url", "query", "description", "prompt", "path"):
                if isinstance(args.get(key), str):
                    return args[key].splitlines()[0][:160] if args[key] else ""
        return self.input.full.replace("\n", " ")[:160]


@dataclass
class Step:
    """One assistant message: the text it wrote, then the calls it made (parallel when several)."""

    batch: int | None
    reasoning: list[str]
    calls: list[Call]


@dataclass
class Agent:
    """A subagent and its own steps, nested under the call that started it."""

    subagent: dict[str, Any]
    steps: list[Step]


@dataclass
class TraceView:
    trace: dict[str, Any]
    steps: list[Step]
    answer: Markup
    orphans: list[Agent]  # subagents whose starting call is unknown: shown apart, never dropped


def _steps(calls: list[dict[str, Any]], agent_id: str | None, subagents: list[dict[str, Any]]) -> list[Step]:
    steps: list[Step] = []
    for c in calls:
        if c["agent_id"] != agent_id:
            continue
        view = Call(c, Text.of(c["input"]), Text.of(c["error"] if c["is_error"] and c["error"] else c["output"]))
        view.subagents = [Agent(s, _steps(calls, s["agent_id"], subagents))
                          for s in subagents if s["parent_tool_use_id"] == c["tool_use_id"]]
        if steps and c["batch"] is not None and steps[-1].batch == c["batch"]:
            steps[-1].calls.append(view)
        else:
            steps.append(Step(c["batch"], [], [view]))
        if c["reasoning"]:
            steps[-1].reasoning.append(c["reasoning"])
    return steps


def trace_view(trace: dict[str, Any]) -> TraceView:
    """The tree of one trace, from its JSON form (what `ccd traces show --json` prints)."""
    calls, subagents = trace["tool_calls"], list(trace["subagents"])
    known = {s["agent_id"] for s in subagents}
    subagents += [{"agent_id": a, "agent_type": None, "parent_tool_use_id": None, "background": None,
                   "started_at": None, "ended_at": None, "final_response": None}
                  for a in dict.fromkeys(c["agent_id"] for c in calls) if a is not None and a not in known]
    call_ids = {c["tool_use_id"] for c in calls}
    orphans = [Agent(s, _steps(calls, s["agent_id"], subagents)) for s in subagents
               if s["parent_tool_use_id"] not in call_ids]
    return TraceView(trace, _steps(calls, None, subagents), markdown(trace["final_response"]), orphans)
