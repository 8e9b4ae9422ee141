"""The ReasoningVector: 35 named dimensions in [0, 1], the basis of behavioural comparison.

`DIMENSIONS` documents each one: (name, what it measures, how it is normalised). Counts are
capped so that "a lot" saturates at 1. Compare two vectors with `cosine`.
"""

from __future__ import annotations

import math
import re

from cc_capture.signals.extract import EDIT_TOOLS, check_kind, is_explore
from cc_capture.signals.model import Signals, TraceView

_DEPTH = {"none": 0.0, "minimal": 0.25, "moderate": 0.5, "thorough": 0.75, "exhaustive": 1.0}
_HEDGE_RE = re.compile(r"\b(?:maybe|perhaps|possibly|might|probably|likely|I think|I believe|not sure|seems)\b", re.I)
_CODE_BLOCK_RE = re.compile(r"```")
_MARKDOWN_RES = [re.compile(p, re.M) for p in (r"^#{1,6} ", r"^\s*(?:[-*]|\d+\.) ", r"\*\*[^*]+\*\*", r"^\|.*\|$")]
_JSON_BLOCK_RE = re.compile(r"```json|^\s*[\[{]", re.M)


def _cap(value: float, top: float) -> float:
    return max(0.0, min(1.0, value / top)) if top else 0.0


def _words(text: str) -> int:
    return len(text.split())


# (name, what it measures, normalisation)
DIMENSIONS: list[tuple[str, str, str]] = [
    # behavioural (15)
    ("reasoning_steps", "assistant steps (tool rounds + answer)", "count / 10, capped"),
    ("exploration_depth", "how much the agent looked around", "none 0, minimal .25, moderate .5, thorough .75, exhaustive 1"),
    ("tool_calls", "tool calls, subagents' included", "count / 20, capped"),
    ("constraints", "constraints stated by the user or the agent", "count / 5, capped"),
    ("self_corrections", "failures followed by a change of course, corrections in words", "count / 3, capped"),
    ("pruning", "approaches considered and rejected", "count / 3, capped"),
    ("assumptions", "assumptions stated", "count / 5, capped"),
    ("validations", "tests, linters, builds, re-reads, self-checks", "count / 3, capped"),
    ("counterfactuals", "alternatives and what-ifs considered", "count / 3, capped"),
    ("multi_step", "several steps with tool chaining", "0 or 1"),
    ("rag", "read or searched for context before answering", "0 or 1"),
    ("terminal", "ran shell commands", "0 or 1"),
    ("web_search", "searched or fetched the web", "0 or 1"),
    ("parallel_tools", "several calls in one message", "0 or 1"),
    ("explicit_planning", "laid out a plan", "0 or 1"),
    # quality (10)
    ("constraint_adherence", "edits avoided files a constraint said not to touch", "1 - violations / constraints; 1 if none"),
    ("reasoning_depth", "words of reasoning per step", "mean words / 60, capped"),
    ("tool_efficiency", "share of calls that were not redundant repeats", "1 - redundant / calls; 1 if no calls"),
    ("self_correction", "share of failed calls later recovered", "recovered / errors; 1 if no errors"),
    ("exploration_fit", "edited files were read or searched first", "share of edited files looked at before editing; 1 if none"),
    ("assumption_clarity", "how firmly assumptions are stated", "mean confidence; 1 if none"),
    ("validation_completeness", "a check ran after the last edit", "1 if so, 0 if edits went unchecked, 1 if no edits"),
    ("counterfactual_consideration", "alternatives weighed (counterfactuals + pruning)", "count / 2, capped"),
    ("overall_confidence", "how little the answer hedges", "1 - hedges per 100 words / 5, floored at 0"),
    ("task_success", "finished with an answer and no unrecovered error", "1 completed and clean, .5 with unrecovered errors, 0 otherwise"),
    # metadata (10)
    ("response_time", "wall time from prompt to answer", "seconds / 600, capped"),
    ("response_length", "words in the final answer", "words / 1000, capped"),
    ("code_blocks", "fenced code blocks in the answer", "count / 5, capped"),
    ("markdown", "markdown features in the answer (headings, lists, bold, tables)", "features present / 4"),
    ("json_output", "the answer contains JSON", "0 or 1"),
    ("errors", "failed tool calls", "errors / calls; 0 if no calls"),
    ("user_feedback", "the user's rating", "up 1, none .5, down 0"),
    ("safety_concerns", "refusals and cautions", "count / 3, capped"),
    ("provenance_citations", "sources the answer cites", "cited / sources; 0 if no sources"),
    ("edit_history", "the same file edited again and again", "most edits of one file / 5, capped"),
]
VECTOR_NAMES = [d[0] for d in DIMENSIONS]
assert len(VECTOR_NAMES) == 35


def _constraint_adherence(s: Signals) -> float:
    if not s.constraints_detected:
        return 1.0
    protected = set()
    for c in s.constraints_detected:
        if re.search(r"\b(?:don't|do not|never|can't|cannot|must not|shouldn't|without)\b", c, re.I):
            protected.update(re.findall(r"[\w./-]+\.\w{1,5}\b", c))
    violated = [f for f in s.edit_history.files if any(f.endswith(p) for p in protected)]
    return max(0.0, 1 - len(violated) / len(s.constraints_detected))


def _exploration_fit(t: TraceView) -> float:
    looked: set[str] = set()
    edited_first_seen: dict[str, bool] = {}
    for c in t.calls:
        args = c.input if isinstance(c.input, dict) else {}
        path = str(args.get("file_path") or args.get("path") or "")
        if c.name in EDIT_TOOLS and path:
            edited_first_seen.setdefault(path, path in looked or any(path.startswith(p) for p in looked if p))
        elif is_explore(c) and path:
            looked.add(path)
    if not edited_first_seen:
        return 1.0
    return sum(edited_first_seen.values()) / len(edited_first_seen) if looked else 0.0


def vector(t: TraceView, s: Signals) -> list[float]:
    answer = t.final_response or ""
    reasoning_words = [len(c.reasoning.split()) for c in t.main_calls if c.reasoning]
    edited = bool(s.edit_history.files)
    last_edit = max((i for i, c in enumerate(t.calls) if c.name in EDIT_TOOLS), default=-1)
    checked_after_last = any(i > last_edit and (c.name == "Read" or check_kind(c)) for i, c in enumerate(t.calls))
    sources = len(s.provenance.files) + len(s.provenance.urls) + len(s.provenance.commands)
    words = _words(answer)
    hedges = len(_HEDGE_RE.findall(answer))
    if t.status == "completed" and answer:
        success = 1.0 if s.error_recovery.unrecovered == 0 else 0.5
    else:
        success = 0.0
    values = [
        _cap(s.reasoning_steps, 10),
        _DEPTH[s.exploration_depth],
        _cap(s.n_tool_calls, 20),
        _cap(len(s.constraints_detected), 5),
        _cap(len(s.self_corrections), 3),
        _cap(len(s.pruning_decisions), 3),
        _cap(len(s.assumptions), 5),
        _cap(len(s.validation_checks), 3),
        _cap(len(s.counterfactual_paths), 3),
        float(s.multi_step_reasoning),
        float(s.used_rag),
        float(s.used_terminal),
        float(s.used_web_search),
        float(s.parallel_tools),
        float(bool(s.explicit_plan)),
        _constraint_adherence(s),
        _cap(sum(reasoning_words) / len(reasoning_words), 60) if reasoning_words else 0.0,
        s.tool_efficiency.ratio,
        s.error_recovery.recovered / s.error_recovery.errors if s.error_recovery.errors else 1.0,
        _exploration_fit(t),
        sum(a.confidence for a in s.assumptions) / len(s.assumptions) if s.assumptions else 1.0,
        (1.0 if checked_after_last else 0.0) if edited else 1.0,
        _cap(len(s.counterfactual_paths) + len(s.pruning_decisions), 2),
        max(0.0, 1 - (hedges / max(words, 1) * 100) / 5),
        success,
        _cap(t.duration_s or 0.0, 600),
        _cap(words, 1000),
        _cap(len(_CODE_BLOCK_RE.findall(answer)) // 2, 5),
        sum(1 for rx in _MARKDOWN_RES if rx.search(answer)) / len(_MARKDOWN_RES),
        1.0 if _JSON_BLOCK_RE.search(answer) else 0.0,
        s.error_recovery.errors / s.n_tool_calls if s.n_tool_calls else 0.0,
        {"up": 1.0, "down": 0.0}.get(t.feedback or "", 0.5),
        _cap(len(s.safety_signals.refusals) + len(s.safety_signals.cautions), 3),
        len(s.provenance.cited) / sources if sources else 0.0,
        _cap(max(s.edit_history.files.values(), default=0), 5),
    ]
    return [round(min(1.0, max(0.0, v)), 4) for v in values]



def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two behaviour vectors (0 when either is all zeros)."""
    dot = sum(x * y for x, y in zip(a, b))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0
