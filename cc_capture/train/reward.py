"""GRPO's reward function in trl's signature: each generated step scored against Claude's next
step with `cc_capture.evaluate.metrics.step_reward` (valid call format, right tool, argument
similarity, order of the calls)."""

from __future__ import annotations

import json
from typing import Any

from cc_capture.evaluate.metrics import step_reward


def behavioural_reward(completions: list, reference: list[str], **_: Any) -> list[float]:
    """trl reward function: `reference` is the dataset column of Claude's calls (JSON)."""
    out = []
    for completion, ref in zip(completions, reference):
        text = completion[-1]["content"] if isinstance(completion, list) else str(completion)
        out.append(step_reward(text, json.loads(ref)))
    return out
