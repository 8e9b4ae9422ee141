"""Preference pairs for DPO, each with its origin.

- `self_correction`: within a trace, a failed call followed by a different call that worked: at
  the same point of the conversation, the step that worked is chosen over the step that failed.
- `rating`: a trace rated up against one rated down whose prompt is similar (word overlap):
  for the same prompt, the first step of the good one is chosen over that of the bad one.
- `divergence`: where a trained local model's next step differs from Claude's (made by
  `cc_capture.train.divergence`, which needs the model, and passed to the builder).
"""

from __future__ import annotations

import re
from typing import Any

from cc_capture.datasets.conversation import Step, message, steps_of, SYSTEM_PROMPT
from cc_capture.records import Trace

_WORD_RE = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD_RE.findall(text or "") if len(w) > 2}


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of two prompts' words."""
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def _assistant(step: Step) -> list[dict[str, Any]]:
    return [step.messages()[0]]


def self_correction_pairs(trace: Trace, max_tool_output_tokens: int) -> list[dict[str, Any]]:
    steps = steps_of(trace, max_tool_output_tokens)
    head = [message("system", SYSTEM_PROMPT), message("user", trace.prompt or "")]
    failed_ids = {c.tool_use_id for c in trace.tool_calls if c.is_error}
    pairs = []
    for i, step in enumerate(steps[:-1]):
        if not any(c["id"] in failed_ids for c in step.calls):
            continue
        nxt = steps[i + 1]
        if any(c["id"] in failed_ids for c in nxt.calls):
            continue  # the next step failed too: no preference to learn
        if [(c["name"], c["arguments"]) for c in nxt.calls] == [(c["name"], c["arguments"]) for c in step.calls]:
            continue  # a plain retry of the same call
        prompt = head + [m for s in steps[:i] for m in s.messages()]
        pairs.append({"prompt": prompt, "chosen": _assistant(nxt), "rejected": _assistant(step),
                      "origin": "self_correction", "trace_ids": [trace.trace_id], "session_id": trace.session_id})
    return pairs


def _first_step(trace: Trace, max_tool_output_tokens: int) -> list[dict[str, Any]]:
    steps = steps_of(trace, max_tool_output_tokens)
    return _assistant(steps[0]) if steps else [message("assistant", trace.final_response or "")]


def rating_pairs(up: list[Trace], down: list[Trace], max_tool_output_tokens: int,
                 min_similarity: float = 0.5) -> list[dict[str, Any]]:
    pairs = []
    for good in up:
        best = max(down, key=lambda bad: similarity(good.prompt, bad.prompt), default=None)
        if best is None or similarity(good.prompt, best.prompt) < min_similarity:
            continue
        prompt = [message("system", SYSTEM_PROMPT), message("user", good.prompt or "")]
        pairs.append({"prompt": prompt, "chosen": _first_step(good, max_tool_output_tokens),
                      "rejected": _first_step(best, max_tool_output_tokens), "origin": "rating",
                      "trace_ids": [good.trace_id, best.trace_id], "session_id": good.session_id})
    return pairs
