"""Preference pairs from where the local model diverges from Claude (`ccd dataset build --dpo
--divergences-from RUN`): the trained model writes its next step for each training prompt where
Claude called tools (`cc_capture.evaluate.generate`); when the behavioural step reward scores it
below a threshold, Claude's step is chosen over the model's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cc_capture.datasets.conversation import arguments_json, message, next_step_prompts
from cc_capture.evaluate.metrics import TAG, parse_calls, step_reward
from cc_capture.records import Run


def _as_message(completion: str) -> dict[str, Any]:
    """A generated step as an assistant message (tool calls parsed when they parse)."""
    calls, _ = parse_calls(completion)
    text = completion.split(TAG, 1)[0] if TAG in completion else completion
    tool_calls = [{"id": f"generated-{i}", "type": "function",
                   "function": {"name": c["name"], "arguments": arguments_json(c["parameters"])}}
                  for i, c in enumerate(calls)] or None
    return message("assistant", text.strip(), tool_calls)


def find(run: Run, sft_dataset: Path, max_prompts: int = 50, threshold: float = 0.5,
         max_new_tokens: int = 128) -> list[dict[str, Any]]:
    from cc_capture.evaluate.generate import generate, load

    rows = [json.loads(l) for l in (sft_dataset / "train.jsonl").read_text().splitlines()]
    steps = [(row, step) for row in rows for step in next_step_prompts(row["messages"])][:max_prompts]
    tok, model = load(run.artifacts["adapter_dir"])
    completions = generate(tok, model, [(step["prompt"], json.loads(row["tools"])) for row, step in steps],
                           max_new_tokens=max_new_tokens)
    pairs: list[dict[str, Any]] = []
    for (row, step), completion in zip(steps, completions):
        value = step_reward(completion, json.loads(step["reference"]))
        if value >= threshold:
            continue
        claude = next(m for m in row["messages"][len(step["prompt"]):] if m["role"] == "assistant")
        pairs.append({"prompt": step["prompt"], "chosen": [claude], "rejected": [_as_message(completion)],
                      "origin": "divergence", "score": value, "trace_ids": [row["trace_id"]],
                      "session_id": row["session_id"], "run_id": run.run_id})
    return pairs
