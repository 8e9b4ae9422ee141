"""Quality gates: does a trace qualify for training, and why (every decision keeps its reasons).

Include: multi-step traces with tool chaining; traces the user rated up. Exclude: the local model's
sessions (origin local: `ccd compare`, `ccd local`), rated down,
errored or incomplete (StopFailure, interrupted, still open, no final answer), cc-capture's own
slash commands, trivial (a
short answer and no tools), ambiguous (a prompt that means nothing without its context, or an
answer that only asks a clarifying question). A rating up overrides "trivial" and "ambiguous",
never "errored or incomplete"; a rating down always excludes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cc_capture.signals.model import Signals, TraceView

if TYPE_CHECKING:
    from cc_capture.config import GateSettings

_PUNCT_RE = re.compile(r"[^\w\s?]")


@dataclass(frozen=True)
class GateValues:
    """The gates' values without their pydantic model, for a process that need not load pydantic
    (an import worker): `GateValues(**settings.gates.model_dump())`. Their defaults and validation
    stay in config.GateSettings alone; a field added there or removed makes that call fail."""

    min_answer_words: int
    exclude_statuses: list[str]
    require_final_answer: bool
    min_prompt_chars: int
    ambiguous_prompts: list[str]
    honour_feedback: bool


if TYPE_CHECKING:
    Gates = GateSettings | GateValues  # what `decide` reads the gates from


def decide(t: TraceView, s: Signals, g: Gates) -> tuple[bool, list[str]]:
    hard: list[str] = []  # no rating overrides these
    soft: list[str] = []  # a rating up overrides these
    include: list[str] = []
    if g.honour_feedback and t.feedback == "down":
        hard.append("exclude: rated down by the user")
    if t.origin == "local":
        hard.append("exclude: the local model's session (origin local), not Claude's")
    if (t.prompt or "").lstrip().startswith("/cc-capture:"):
        hard.append("exclude: a cc-capture command, not a task")
    if t.status in g.exclude_statuses:
        hard.append(f"exclude: errored or incomplete (status {t.status})")
    answer = (t.final_response or "").strip()
    if g.require_final_answer and not answer:
        hard.append("exclude: no final answer")
    words = len(answer.split())
    if s.n_tool_calls == 0 and words < g.min_answer_words and answer:
        soft.append(f"exclude: trivial ({words} words, no tool calls)")
    prompt = _PUNCT_RE.sub("", (t.prompt or "").strip().lower()).strip()
    if len(prompt) < g.min_prompt_chars or prompt in {p.lower() for p in g.ambiguous_prompts}:
        soft.append(f"exclude: ambiguous prompt ({t.prompt!r})")
    elif s.n_tool_calls == 0 and answer.endswith("?") and words < g.min_answer_words:
        soft.append("exclude: ambiguous (the answer only asks a clarifying question)")
    if s.multi_step_reasoning:
        include.append(f"include: multi-step with tool chaining ({s.n_tool_calls} calls in {s.reasoning_steps} steps)")
    if g.honour_feedback and t.feedback == "up":
        include.append("include: rated up by the user")
        if soft:
            include.append("include: the rating up overrides " + "; ".join(r.removeprefix("exclude: ") for r in soft))
            soft = []
    reasons = hard + soft + include
    if not reasons:
        reasons.append("include: completed with a substantive answer")
    return not (hard or soft), reasons
