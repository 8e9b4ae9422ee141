"""Preference pairs for DPO, each with its origin.

- `self_correction`: within a trace, a failed call followed by a different call that worked: at
  the same point of the conversation, the step that worked is chosen over the step that failed.
- `rating`: a trace rated up against one rated down whose prompt is similar (word overlap):
  for the same prompt, the first step of the good one is chosen over that of the bad one.
- `divergence`: where a trained local model's next step differs from Claude's (made by
  `cc_capture.train.divergence`, which needs the model, and passed to the builder).
- `compare`: where the local model, run inside Claude Code on a held-out prompt (`ccd compare`),
  left Claude's path: at the first step that differs, Claude's step is chosen over the local
  model's, with the steps both took as the prompt (`compare_pair`).
"""

from __future__ import annotations

import re
from typing import Any

from cc_capture import records
from cc_capture.datasets.conversation import Step, message, steps_of
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


def self_correction_pairs(trace: Trace, max_tool_output_tokens: int, system_prompt: str) -> list[dict[str, Any]]:
    steps = steps_of(trace, max_tool_output_tokens)
    head = [message("system", system_prompt), message("user", trace.prompt or "")]
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


def rating_pairs(up: list[Trace], down: list[Trace], max_tool_output_tokens: int, system_prompt: str,
                 min_similarity: float = 0.5) -> list[dict[str, Any]]:
    pairs = []
    for good in up:
        best = max(down, key=lambda bad: similarity(good.prompt, bad.prompt), default=None)
        if best is None or similarity(good.prompt, best.prompt) < min_similarity:
            continue
        prompt = [message("system", system_prompt), message("user", good.prompt or "")]
        pairs.append({"prompt": prompt, "chosen": _first_step(good, max_tool_output_tokens),
                      "rejected": _first_step(best, max_tool_output_tokens), "origin": "rating",
                      "trace_ids": [good.trace_id, best.trace_id], "session_id": good.session_id})
    return pairs



def rebased(trace: Trace, old_root: str | None, new_root: str | None) -> Trace:
    """The trace with the folder `old_root` written as `new_root` wherever it appears (call inputs and
    outputs, text, the answer): a replay in a worktree reads `<worktree>/a.py` where Claude read
    `<project>/a.py`, and the two are the same call."""
    if not old_root or not new_root or old_root == new_root:
        return trace
    return records.replace_text(trace, old_root, new_root)


def compare_pair(claude: Trace, local: Trace, step: int, compare_id: str,
                 max_tool_output_tokens: int, system_prompt: str) -> dict[str, Any]:
    """The pair at `step`, the first step where the local model left Claude's path (found by
    `cc_capture.compare.scores.first_divergence`; a step past the last is the final answer): Claude's
    step (or answer) chosen, the local model's rejected, the conversation up to there (the steps
    both took, with Claude's tool results) as the prompt."""
    theirs, ours = steps_of(claude, max_tool_output_tokens), steps_of(local, max_tool_output_tokens)

    def step_or_answer(steps: list[Step], trace: Trace) -> list[dict[str, Any]]:
        return _assistant(steps[step]) if step < len(steps) else [message("assistant", trace.final_response or "")]

    prompt = [message("system", system_prompt), message("user", claude.prompt or "")]
    prompt += [m for s in theirs[:step] for m in s.messages()]
    return {"prompt": prompt, "chosen": step_or_answer(theirs, claude), "rejected": step_or_answer(ours, local),
            "origin": "compare", "compare_id": compare_id, "step": step,
            "trace_ids": [claude.trace_id, local.trace_id], "session_id": claude.session_id}
