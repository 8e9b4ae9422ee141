"""How closely the local model's run of a prompt followed Claude's: one pair of traces
(the read model's `Trace`s, signals included), each score in [0, 1] or None where it does not apply.

- `tool_sequence_similarity`: the longest common subsequence of the two main agents' tool names over
  the longer sequence: Claude `Grep, Read, Read`, local `Read, Read` scores 2/3; both with no call, 1.
- `first_tool_agreement`: 1 when both started with the same tool (or both answered without one).
- `tool_set_overlap`: |A ∩ B| / |A ∪ B| of the sets of tools used (1 when neither used any).
- `argument_agreement`: over the calls the LCS pairs up (same tool, in order), the similarity of their
  key arguments, by evaluate's rules (`evaluate.metrics.argument_similarity`: `file_path` for Read,
  the whitespace-normalised `command` for Bash, ...); None when no call pairs up.
- `answer_similarity`: token-level F1 of the two final answers (evaluate's `token_f1`).
- `claude_steps`, `local_steps`: reasoning steps (tool rounds plus the answer, from the signals).
- `behaviour_cosine`: cosine similarity of the two behaviour vectors (signals' 35 dimensions); None
  when either has no signals.
- `clean_ending`: 1 when the local run ended by itself with an answer (no error, no time or turn
  limit), else 0.
"""

from __future__ import annotations

import json

from cc_capture.datasets.conversation import Step, steps_of
from cc_capture.evaluate.metrics import argument_similarity, token_f1
from cc_capture.records import Trace
from cc_capture.signals.vector import cosine

SCORES = ("tool_sequence_similarity", "first_tool_agreement", "tool_set_overlap", "argument_agreement",
          "answer_similarity", "behaviour_cosine", "clean_ending")
STEPS = ("claude_steps", "local_steps")


def lcs_pairs(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Index pairs (i, j) of one longest common subsequence of `a` and `b`, in order."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def score_pair(claude: Trace, local: Trace, clean: bool) -> dict[str, float | int | None]:
    """Every score of one pair (see the module docstring); `clean`: the local run ended cleanly."""
    theirs, ours = claude.main_calls, local.main_calls
    a, b = [c.name for c in theirs], [c.name for c in ours]
    matched = lcs_pairs(a, b)
    args = [argument_similarity(a[i], ours[j].input if isinstance(ours[j].input, dict) else {},
                                theirs[i].input if isinstance(theirs[i].input, dict) else {}) for i, j in matched]
    sa, sb = set(a), set(b)
    vectors = claude.vector, local.vector
    return {
        "tool_sequence_similarity": round(len(matched) / max(len(a), len(b)), 4) if a or b else 1.0,
        "first_tool_agreement": float((a[0] if a else None) == (b[0] if b else None)),
        "tool_set_overlap": round(len(sa & sb) / len(sa | sb), 4) if sa or sb else 1.0,
        "argument_agreement": round(sum(args) / len(args), 4) if args else None,
        "answer_similarity": round(token_f1(local.final_response or "", claude.final_response or ""), 4),
        "behaviour_cosine": round(cosine(*vectors), 4) if all(vectors) else None,
        "clean_ending": float(clean),
        "claude_steps": (claude.signals or {}).get("reasoning_steps"),
        "local_steps": (local.signals or {}).get("reasoning_steps"),
    }


def _same_step(a: Step, b: Step) -> bool:
    """The same tools in the same order, each with the same key arguments (evaluate's rules)."""
    return [c["name"] for c in a.calls] == [c["name"] for c in b.calls] and all(
        argument_similarity(x["name"], json.loads(y["arguments"]), json.loads(x["arguments"])) == 1.0
        for x, y in zip(a.calls, b.calls))


def first_divergence(claude: Trace, local: Trace) -> int | None:
    """The index of the first step (one assistant message's calls) where the local model's run left
    Claude's, a step past the last meaning the final answer; None when it took every step Claude
    took and then answered too."""
    theirs, ours = steps_of(claude, 0), steps_of(local, 0)
    for i, (a, b) in enumerate(zip(theirs, ours)):
        if not _same_step(a, b):
            return i
    return None if len(theirs) == len(ours) else min(len(theirs), len(ours))
