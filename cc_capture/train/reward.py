"""The behavioural reward of GRPO: how closely a generated step matches Claude's next step.

A completion is scored against the reference tool calls (Claude's) on four parts, weighted:
valid call format (0.25), right tool (0.35), argument similarity (0.25), and sequence alignment
of the tool names (0.15). A step with no tool call is right only where Claude answered too.
"""

from __future__ import annotations

import json
from difflib import SequenceMatcher
from typing import Any

TAG = "<|python_tag|>"


def parse_calls(text: str) -> tuple[list[dict[str, Any]], bool]:
    """Tool calls written after <|python_tag|>, one JSON object a line; and whether all parsed."""
    if TAG not in text:
        return [], True
    body = text.split(TAG, 1)[1]
    for end in ("<|eom_id|>", "<|eot_id|>"):
        body = body.split(end, 1)[0]
    calls, valid = [], True
    for line in filter(None, (l.strip() for l in body.splitlines())):
        try:
            obj = json.loads(line)
        except ValueError:
            valid = False
            continue
        if isinstance(obj, dict) and isinstance(obj.get("name"), str) and isinstance(obj.get("parameters"), dict):
            calls.append(obj)
        else:
            valid = False
    return calls, valid and bool(calls)


def _argument_similarity(a: dict, b: dict) -> float:
    ka, kb = set(a), set(b)
    if not ka and not kb:
        return 1.0
    keys = ka | kb
    return sum(SequenceMatcher(None, str(a.get(k, "")), str(b.get(k, ""))).ratio() for k in keys) / len(keys)


def score(completion: str, reference: list[dict[str, Any]]) -> float:
    calls, valid = parse_calls(completion)
    if not reference:  # Claude answered without a tool
        return 1.0 if not calls and completion.strip() else 0.0
    if not calls:
        return 0.0
    right = calls[0]["name"] == reference[0]["name"]
    args = _argument_similarity(calls[0]["parameters"], reference[0]["parameters"]) if right else 0.0
    order = SequenceMatcher(None, [c["name"] for c in calls], [r["name"] for r in reference]).ratio()
    return round(0.25 * valid + 0.35 * right + 0.25 * args + 0.15 * order, 4)


def behavioural_reward(completions: list, reference: list[str], **_: Any) -> list[float]:
    """trl reward function: `reference` is the dataset column of Claude's calls (JSON)."""
    out = []
    for completion, ref in zip(completions, reference):
        text = completion[-1]["content"] if isinstance(completion, list) else str(completion)
        out.append(score(text, json.loads(ref)))
    return out
