"""How much a model's next step looks like Claude's: per-step metrics, their weighted composite,
and GRPO's step reward. Pure Python (no torch): the evaluator, the trainer's reward and the
divergence finder all score with these functions.

A step is what the model writes after the conversation so far, in the training template's
format (templates/llama31_tools.jinja): either a plain answer ending with `<|eot_id|>`, or
optional text, then `<|python_tag|>` and one `{"name": ..., "parameters": {...}}` JSON object a
line, ending with `<|eom_id|>`. The reference is Claude's step at the same place: its text and
its tool calls (`[{"name", "parameters"}]`, empty when Claude answered).

Each metric is a value in [0, 1] for one step, or None where it does not apply; a model's figure
for a metric is the mean over the steps where it applies. Worked examples (Claude called
`Read {"file_path": "a.py"}` and `Grep {"pattern": "x"}` in one message):

- `valid_call_rate`: 1 when the output is a plain answer or tool calls that all parse, each naming
  a tool of the example's tool list with arguments that validate against that tool's schema
  (required keys present, each value of its declared type), and the turn ends with its end token.
  A model that rambles to the token limit without ending its turn scores 0. Applies to every step.
- `next_action_accuracy`: 1 when the model calls a tool exactly when Claude did and, if so, its
  first tool is Claude's first tool. Answering here scores 0; `Read ...` first scores 1. Every step.
- `tool_accuracy`: steps where Claude called tools; 1 when the model's first tool is Claude's
  first (`Read`): `Grep` first scores 0, even though Claude also called Grep.
- `argument_match`: steps where at least one model call pairs by name with one of Claude's (in
  order, each call paired once); the mean over pairs of the key arguments' similarity
  (`KEY_ARGUMENTS`: `file_path` for Read, so `Read {"file_path": "a.py", "limit": 5}` scores 1;
  difflib's ratio of the two strings for a near miss: "a.py" vs "b.py" scores 0.75).
- `parallel_match`: steps where Claude made several calls in one message; the multiset overlap
  of the tool names, |A ∩ B| / |A ∪ B|: calling `Read, Read` scores 1/3 (∩ = {Read}, ∪ = {Read,
  Read, Grep}), `Grep, Read` scores 1.
- `answer_similarity`: steps where Claude answered (no tool); token-level F1 of the model's
  answer against Claude's (lower-cased word tokens, SQuAD-style): "the tests pass" against
  "all tests pass" scores 2/3. Calling a tool instead scores 0.
- `behavioural_similarity`: the weighted mean of the six figures above (`cc_capture.config.
  DEFAULT_WEIGHTS`: 0.2 each for the first three, 0.15 argument_match, 0.1 parallel_match, 0.15
  answer_similarity; `[evaluate] weights` changes them); a metric with no step to apply to is left out and the weights of the
  others renormalised. This is the number the gate and `ccd status` show.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from cc_capture.config import DEFAULT_WEIGHTS

TAG = "<|python_tag|>"
END_OF_TURN = "<|eot_id|>"
END_OF_MESSAGE = "<|eom_id|>"  # after tool calls: the turn goes on once their results are in

METRICS = tuple(DEFAULT_WEIGHTS)
COMPOSITE = "behavioural_similarity"

# The arguments that say what a call does; other tools compare all their arguments.
KEY_ARGUMENTS = {"Read": ("file_path",), "Edit": ("file_path",), "Write": ("file_path",), "Bash": ("command",),
                 "Grep": ("pattern", "path"), "Glob": ("pattern", "path")}
_JSON_TYPES = {"string": str, "boolean": bool, "integer": int, "number": (int, float), "array": list,
               "object": dict, "null": type(None)}


@dataclass(frozen=True)
class Output:
    """One generated step, parsed: its text, its calls, and why it is invalid (None when valid)."""

    text: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None

    @property
    def valid(self) -> bool:
        return self.problem is None


def parse_calls(text: str) -> tuple[list[dict[str, Any]], bool]:
    """Tool calls written after <|python_tag|>, one JSON object a line; and whether all parsed
    (and there was at least one)."""
    if TAG not in text:
        return [], True
    body = text.split(TAG, 1)[1]
    for end in (END_OF_MESSAGE, END_OF_TURN):
        body = body.split(end, 1)[0]
    calls, valid = [], True
    for line in filter(None, (l.strip() for l in body.splitlines())):
        try:
            obj = json.loads(line)
        except ValueError:
            valid = False
            continue
        if isinstance(obj, dict) and isinstance(obj.get("name"), str) and isinstance(obj.get("parameters"), dict):
            calls.append({"name": obj["name"], "parameters": obj["parameters"]})
        else:
            valid = False
    return calls, valid and bool(calls)


def schema_problem(arguments: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """Why `arguments` do not validate against a tool's parameter schema (the subset of JSON Schema
    the datasets write: object properties with a type, and required keys), or None."""
    properties = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key not in arguments:
            return f"missing required argument {key!r}"
    for key, value in arguments.items():
        expected = (properties.get(key) or {}).get("type")
        if expected in _JSON_TYPES and not isinstance(value, _JSON_TYPES[expected]):
            return f"argument {key!r} is not a {expected}"
        if expected in ("integer", "number") and isinstance(value, bool):
            return f"argument {key!r} is not a {expected}"
    return None


def parse_output(completion: str, tools: list[dict[str, Any]]) -> Output:
    """Read a generated step in the template's format, checking each call against the tool list."""
    text = completion.split(TAG, 1)[0].replace(END_OF_TURN, "").replace(END_OF_MESSAGE, "").strip()
    if TAG not in completion:
        if END_OF_TURN not in completion:
            return Output(text, problem="the turn never ends (cut at the token limit)")
        return Output(text) if text else Output(text, problem="an empty answer")
    calls, parsed = parse_calls(completion)
    if not parsed:
        return Output(text, calls, "tool calls that do not parse")
    if END_OF_MESSAGE not in completion.split(TAG, 1)[1]:
        return Output(text, calls, "tool calls without their end token")
    schemas = {t["function"]["name"]: t["function"].get("parameters") or {} for t in tools}
    for call in calls:
        if call["name"] not in schemas:
            return Output(text, calls, f"unknown tool {call['name']!r}")
        problem = schema_problem(call["parameters"], schemas[call["name"]])
        if problem:
            return Output(text, calls, f"{call['name']}: {problem}")
    return Output(text, calls)


def _normalised(tool: str, key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return " ".join(value.split()) if (tool, key) == ("Bash", "command") else value


def argument_similarity(tool: str, got: dict[str, Any], want: dict[str, Any]) -> float:
    """Mean similarity (difflib ratio; 1 when both are absent) of the key arguments of one tool."""
    keys = KEY_ARGUMENTS.get(tool) or sorted(set(got) | set(want))
    if not keys:
        return 1.0
    total = 0.0
    for key in keys:
        a, b = _normalised(tool, key, got.get(key)), _normalised(tool, key, want.get(key))
        total += 1.0 if a == b else SequenceMatcher(None, a, b).ratio()
    return total / len(keys)


def token_f1(prediction: str, reference: str) -> float:
    """Token-level F1 of two texts (lower-cased word tokens); 1 when both are empty."""
    pred, ref = re.findall(r"\w+", prediction.lower()), re.findall(r"\w+", reference.lower())
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def multiset_overlap(a: list[str], b: list[str]) -> float:
    """|A ∩ B| / |A ∪ B| of two multisets."""
    ca, cb = Counter(a), Counter(b)
    union = sum((ca | cb).values())
    return sum((ca & cb).values()) / union if union else 1.0


def step_metrics(output: Output, reference_text: str, reference_calls: list[dict[str, Any]]) -> dict[str, float | None]:
    """Every metric of one step (None where it does not apply); see the module docstring."""
    calls = output.calls
    first = calls[0]["name"] if calls else None
    want = reference_calls[0]["name"] if reference_calls else None
    values: dict[str, float | None] = dict.fromkeys(METRICS)
    values["valid_call_rate"] = float(output.valid)
    values["next_action_accuracy"] = float(bool(calls) == bool(reference_calls) and first == want)
    if reference_calls:
        values["tool_accuracy"] = float(first == want)
        unused = list(calls)
        pairs = []
        for ref in reference_calls:
            match = next((c for c in unused if c["name"] == ref["name"]), None)
            if match is not None:
                unused.remove(match)
                pairs.append(argument_similarity(ref["name"], match["parameters"], ref["parameters"]))
        if pairs:
            values["argument_match"] = sum(pairs) / len(pairs)
        if len(reference_calls) > 1:
            values["parallel_match"] = multiset_overlap([c["name"] for c in calls],
                                                        [c["name"] for c in reference_calls])
    else:
        values["answer_similarity"] = 0.0 if calls else token_f1(output.text, reference_text)
    return values


def composite(figures: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """The weighted mean of the figures that exist (weights renormalised over them)."""
    present = [(weights.get(m, 0.0), v) for m, v in figures.items() if m in METRICS and v is not None]
    total = sum(w for w, _ in present)
    return sum(w * v for w, v in present) / total if total else None


def step_reward(completion: str, reference: list[dict[str, Any]]) -> float:
    """GRPO's reward for one generated step against Claude's calls: valid call format (0.25), right
    first tool (0.35), argument similarity of that call (0.25), order of the tool names (0.15). A
    step with no tool call is right only where Claude answered too."""
    calls, valid = parse_calls(completion)
    if not reference:  # Claude answered without a tool
        return 1.0 if not calls and completion.strip() else 0.0
    if not calls:
        return 0.0
    right = calls[0]["name"] == reference[0]["name"]
    args = argument_similarity("", calls[0]["parameters"], reference[0]["parameters"]) if right else 0.0
    order = SequenceMatcher(None, [c["name"] for c in calls], [r["name"] for r in reference]).ratio()
    return round(0.25 * valid + 0.35 * right + 0.25 * args + 0.15 * order, 4)
