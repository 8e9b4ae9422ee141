"""Base and enhanced signals of one trace: deterministic rules over its tool calls and text.

Definitions (the README's "Signals" section says the same for users):
- tool_sequence: the main agent's tool names, in the order the model made the calls.
- reasoning_steps: assistant steps = the main agent's tool rounds (batches) + 1 for the answer.
- exploration_depth: by all tool calls (subagents' too): none 0, minimal 1-2, moderate 3-5,
  thorough 6-9, exhaustive 10+.
- workflow_type: iterative (edit-check-edit or check-edit-check loops, or a retry after a
  failure) over parallel
  (several calls in one message) over exploratory (two or more reads/searches before the first
  action) over linear; workflow_traits lists every one that applies.
- used_rag: something was read or searched before answering; used_terminal: a shell ran.
- tool_efficiency: a call identical to an earlier one with no edit in between is redundant.
- error_recovery: a failed call is recovered when a later call of the same agent, of another
  tool or with another input, succeeds.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache
from typing import Any

from cc_capture.signals import classify, phrases
from cc_capture.signals.model import (
    Assumption, CallView, EditHistory, ErrorRecovery, Pruning, Provenance, SafetySignals, SelfCorrection, Signals,
    ToolEfficiency, TraceView, ValidationCheck,
)

EDIT_TOOLS = {"Edit", "MultiEdit", "Write", "NotebookEdit"}
READ_TOOLS = {"Read", "Grep", "Glob", "LS", "NotebookRead", "WebFetch", "WebSearch", "ToolSearch"}
TERMINAL_TOOLS = {"Bash", "BashOutput", "PowerShell"}
WEB_TOOLS = {"WebSearch", "WebFetch"}

_READ_ONLY_SHELL = re.compile(
    r"^\s*(?:ls|cat|head|tail|less|grep|rg|ag|find|fd|tree|wc|pwd|which|file|stat|du|sed -n|awk|jq|"
    r"git (?:status|log|diff|show|blame|branch|grep|ls-files))\b"
)
_CHECK_COMMANDS = [
    ("tests", re.compile(r"\b(?:pytest|py\.test|unittest|nose2|tox|nox|(?:npm|yarn|pnpm|bun)(?: run)? test|go test|"
                         r"cargo (?:test|nextest)|make (?:test|check)|mix test|rspec|jest|vitest|mocha|ctest|"
                         r"(?:gradle|mvn|\./gradlew) test|dotnet test|phpunit|bats|deno test|swift test|node --test|"
                         r"Invoke-Pester)\b")),
    ("lint", re.compile(r"\b(?:ruff(?! format)|flake8|pylint|eslint|credo|golangci-lint|clippy|rubocop|shellcheck|"
                        r"stylelint|markdownlint|hadolint|(?:npm|yarn|pnpm|bun)(?: run)? lint)\b")),
    ("typecheck", re.compile(r"\b(?:mypy|pyright|tsc|dialyzer|cargo check|go vet|flow check|"
                             r"(?:npm|yarn|pnpm|bun)(?: run)? type-?check)\b")),
    ("build", re.compile(r"\b(?:cargo build|go build|npm run build|yarn build|mix compile|make\b(?! test)|gcc|"
                         r"g\+\+|javac|mvn (?:package|compile)|gradle build|python -m build|tsc -b)\b")),
]
_CHECK_GATE = phrases.Gate([rx for _, rx in _CHECK_COMMANDS])
_URL_RE = re.compile(r"https?://[^\s\"'<>)\]]+")


def _input(c: CallView) -> dict[str, Any]:
    return c.input if isinstance(c.input, dict) else {}


def _command(c: CallView) -> str:
    return str(_input(c).get("command") or "") if c.name in TERMINAL_TOOLS else ""


def _file(c: CallView) -> str | None:
    value = _input(c).get("file_path") or _input(c).get("notebook_path")
    return str(value) if value else None


def is_explore(c: CallView) -> bool:
    return c.name in READ_TOOLS or bool(_READ_ONLY_SHELL.match(_command(c)))


def check_kind(c: CallView) -> str | None:
    command = _command(c)
    if not command:
        return None
    return _remembered_check_kind(command) if len(command) <= 2_000 else _check_kind(command)


def _check_kind(command: str) -> str | None:
    scan = _CHECK_GATE.scan(command)  # commands can be long: most run no regex
    return next((_CHECK_COMMANDS[i][0] for i in scan.candidates if scan.matches(i)), None)


# a trace asks of each call several times (its place, workflow, checks, vector); a long command (a
# heredoc) is not kept: 256 short ones take about 0.5 MB at most
_remembered_check_kind = lru_cache(maxsize=256)(_check_kind)


def call_kind(c: CallView) -> str:
    """What a call does, as the sentence classifier's context sees it (classify.NEXT_CALLS)."""
    if check_kind(c):
        return "check"
    if c.name in EDIT_TOOLS:
        return "edit"
    if is_explore(c):
        return "read"
    return "shell" if c.name in TERMINAL_TOOLS else "other"


def _short(c: CallView, width: int = 80) -> str:
    detail = _command(c) or _file(c) or _input(c).get("pattern") or _input(c).get("url") or ""
    text = f"{c.name or ''} {detail}".strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def _signature(c: CallView) -> str:
    return (c.name or "") + json.dumps(c.input, sort_keys=True, default=str)


def exploration_depth(n_calls: int) -> str:
    if n_calls == 0:
        return "none"
    if n_calls <= 2:
        return "minimal"
    if n_calls <= 5:
        return "moderate"
    if n_calls <= 9:
        return "thorough"
    return "exhaustive"


def _batches(calls: list[CallView]) -> list[list[CallView]]:
    """Calls grouped by assistant message (batch); calls without a batch stand alone."""
    groups: dict[Any, list[CallView]] = {}
    for i, c in enumerate(calls):
        groups.setdefault(("b", c.batch) if c.batch is not None else ("c", i), []).append(c)
    return list(groups.values())


def _workflow(t: TraceView, parallel: bool) -> tuple[str, list[str]]:
    main = t.main_calls
    traits = []
    kinds = ["edit" if c.name in EDIT_TOOLS else "check" if (check_kind(c) or c.name in TERMINAL_TOOLS) else "read"
             if is_explore(c) else "other" for c in main]
    seq = "".join({"edit": "E", "check": "C", "read": "R", "other": "O"}[k] for k in kinds)
    retries = sum(1 for a, b in zip(main, main[1:]) if a.is_error and b.name == a.name)
    if re.search(r"E[RO]*C[RCO]*E|C[RO]*E[RO]*C", seq) or retries >= 1:
        traits.append("iterative")
    if parallel:
        traits.append("parallel")
    first_action = next((i for i, k in enumerate(kinds) if k != "read"), len(kinds))
    if first_action >= 2 or (len(kinds) >= 3 and first_action == len(kinds)):
        traits.append("exploratory")
    return (traits[0] if traits else "linear"), traits


def _texts(t: TraceView) -> list[str]:
    return [c.reasoning for c in t.calls if c.reasoning] + ([t.final_response] if t.final_response else [])


def text_contexts(t: TraceView) -> list[tuple[str, bool, str]]:
    """(text, after_error, next_call) of each reasoning text and of the final answer: whether a
    call of the same agent's batch before it failed, and the kind of the call it leads to ("" for
    the answer): the place the sentence classifier reads each sentence in."""
    out = []
    failed: dict[tuple[str | None, int], bool] = {}  # (agent, batch) -> a call of it failed
    last: dict[str | None, int] = {}  # agent -> its latest batch
    for i, c in enumerate(t.calls):
        batch = c.batch if c.batch is not None else -1 - i
        if c.reasoning:
            previous = last.get(c.agent_id)
            after_error = previous is not None and previous != batch and failed.get((c.agent_id, previous), False)
            out.append((c.reasoning, after_error, call_kind(c)))
        failed[(c.agent_id, batch)] = failed.get((c.agent_id, batch), False) or c.is_error
        last[c.agent_id] = batch
    if t.final_response:
        previous = last.get(None)
        out.append((t.final_response, previous is not None and failed.get((None, previous), False), ""))
    return out


def _classified(t: TraceView) -> dict[str, list[str]]:
    """Sentences of the reasoning and the answer per kind, each classified in its place."""
    found: dict[str, list[str]] = {k: [] for k in phrases.KINDS}
    for text, after_error, next_call in text_contexts(t):
        for kind, sentences in classify.detect(text, after_error, next_call).items():
            found[kind].extend(sentences)
    return found


def extract(t: TraceView) -> Signals:
    main = t.main_calls
    batches = _batches(main)
    parallel = any(len(b) >= 2 for b in batches)
    workflow_type, traits = _workflow(t, parallel)

    found = _classified(t)
    prompt_constraints = phrases.detect(t.prompt)["constraint"] if t.prompt else []
    constraints = list(dict.fromkeys(prompt_constraints + found["constraint"]))

    # self-corrections: failures followed by a change of course, and corrections in words
    corrections = []
    for i, c in enumerate(main):
        if c.is_error and i + 1 < len(main):
            nxt = main[i + 1]
            change = f"retried {nxt.name} differently" if nxt.name == c.name else f"switched to {_short(nxt)}"
            first_line = (c.error or "error").strip().splitlines()[0][:120] if (c.error or "").strip() else "error"
            corrections.append(SelfCorrection(trigger=f"failed {_short(c)}: {first_line}", change=change))
    corrections += [SelfCorrection(trigger="text", change=s) for s in found["self_correction"]]

    # errors and their recovery
    signatures: dict[int, str] = {}  # each call's _signature(), made once, when first needed

    def signature(i: int) -> str:
        if i not in signatures:
            signatures[i] = _signature(t.calls[i])
        return signatures[i]

    errors = recovered = 0
    for i, c in enumerate(t.calls):
        if not c.is_error:
            continue
        errors += 1
        later = [j for j in range(i + 1, len(t.calls)) if t.calls[j].agent_id == c.agent_id]
        if any(not t.calls[j].is_error and signature(j) != signature(i) for j in later):
            recovered += 1

    # redundant repeats: the same call again with no edit in between
    redundant = 0
    seen: set[str] = set()
    for i, c in enumerate(t.calls):
        if c.name in EDIT_TOOLS:
            seen.clear()
            continue
        sig = signature(i)
        if sig in seen:
            redundant += 1
        seen.add(sig)
    n_calls = len(t.calls)

    # validation: checks run, files re-read after editing them, self-checks in words
    checks: list[ValidationCheck] = []
    edited: set[str] = set()
    for c in t.calls:
        kind = check_kind(c)
        if kind:
            checks.append(ValidationCheck(kind=kind, evidence=_command(c)[:200], after_edit=bool(edited)))
        if c.name == "Read" and _file(c) in edited:
            checks.append(ValidationCheck(kind="reread", evidence=_file(c) or "", after_edit=True))
        if c.name in EDIT_TOOLS and _file(c):
            edited.add(_file(c))
    checks += [ValidationCheck(kind="self_check", evidence=s, after_edit=bool(edited)) for s in found["validation"]]

    # provenance and whether the answer cites it
    files = list(dict.fromkeys(f for f in (_file(c) or _input(c).get("path") for c in t.calls) if f))
    commands = list(dict.fromkeys(_command(c)[:200] for c in t.calls if _command(c)))
    urls = list(dict.fromkeys([str(_input(c)["url"]) for c in t.calls if _input(c).get("url")]
                              + [u for c in t.calls if c.name in WEB_TOOLS for u in _URL_RE.findall(str(c.output))][:20]))
    answer = t.final_response or ""
    cited = [f for f in files if f in answer or f.rsplit("/", 1)[-1] in answer]
    cited += [u for u in urls if u in answer] + [cmd for cmd in commands if len(cmd) > 3 and cmd in answer]

    edit_counts = Counter(_file(c) for c in t.calls if c.name in EDIT_TOOLS and _file(c))
    steps = len(batches) + (1 if t.final_response else 0)
    return Signals(
        tool_sequence=[c.name or "" for c in main],
        reasoning_steps=steps,
        exploration_depth=exploration_depth(n_calls),
        n_tool_calls=n_calls,
        workflow_type=workflow_type,
        workflow_traits=traits,
        constraints_detected=constraints,
        pruning_decisions=[Pruning(*phrases.split_reason(s)) for s in found["pruning"]],
        self_corrections=corrections,
        explicit_plan=(found["plan"] + [s for text in _texts(t) for s in phrases.numbered_steps(text)][:20]) or None,
        multi_step_reasoning=steps >= 3 and len(batches) >= 2,
        used_terminal=any(c.name in TERMINAL_TOOLS for c in t.calls),
        used_rag=any(is_explore(c) for c in t.calls),
        used_web_search=any(c.name in WEB_TOOLS for c in t.calls),
        parallel_tools=parallel,
        tool_efficiency=ToolEfficiency(redundant, round(1 - redundant / n_calls, 4) if n_calls else 1.0),
        error_recovery=ErrorRecovery(errors, recovered, errors - recovered),
        assumptions=[Assumption(s, phrases.assumption_confidence(s)) for s in found["assumption"]],
        validation_checks=checks,
        counterfactual_paths=found["counterfactual"],
        provenance=Provenance(files[:50], commands[:50], urls[:50], cited[:50], bool(cited)),
        safety_signals=SafetySignals(found["safety_refusal"], found["safety_caution"]),
        self_critique=found["self_critique"],
        edit_history=EditHistory(
            files=dict(edit_counts),
            repeated_files=[f for f, n in edit_counts.items() if n >= 2],
            session_repeated_files=[f for f in edit_counts if f in t.prior_session_edits],
        ),
        preference_ranking=found["preference"],
        token_confidence=None,
    )
