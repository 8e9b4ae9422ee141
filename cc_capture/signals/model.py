"""What the extractor reads (a TraceView) and what it produces (Signals), as plain typed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec


@dataclass
class CallView:
    name: str
    input: Any
    output: Any
    is_error: bool
    error: str | None
    reasoning: str
    agent_id: str | None
    batch: int | None
    status: str


@dataclass
class TraceView:
    """One trace as the extractor sees it; built from the store, or by hand in tests."""

    trace_id: str
    prompt: str
    final_response: str
    status: str
    calls: list[CallView] = field(default_factory=list)
    duration_s: float | None = None
    feedback: str | None = None  # 'up' | 'down'
    prior_session_edits: dict[str, int] = field(default_factory=dict)
    origin: str = "claude"  # store.Origin: 'local' is the local model's session, never Claude's example

    @property
    def main_calls(self) -> list[CallView]:
        return [c for c in self.calls if c.agent_id is None]


class Pruning(msgspec.Struct):
    approach: str
    reason: str | None


class SelfCorrection(msgspec.Struct):
    trigger: str
    change: str


class Assumption(msgspec.Struct):
    text: str
    confidence: float


class ValidationCheck(msgspec.Struct):
    kind: str  # tests | lint | typecheck | build | reread | self_check
    evidence: str
    after_edit: bool


class ToolEfficiency(msgspec.Struct):
    redundant_calls: int
    ratio: float


class ErrorRecovery(msgspec.Struct):
    errors: int
    recovered: int
    unrecovered: int


class Provenance(msgspec.Struct):
    files: list[str]
    commands: list[str]
    urls: list[str]
    cited: list[str]
    cites_sources: bool


class SafetySignals(msgspec.Struct):
    refusals: list[str]
    cautions: list[str]


class EditHistory(msgspec.Struct):
    files: dict[str, int]
    repeated_files: list[str]
    session_repeated_files: list[str]


class Signals(msgspec.Struct):
    # base signals
    tool_sequence: list[str]
    reasoning_steps: int
    exploration_depth: str
    n_tool_calls: int
    workflow_type: str
    workflow_traits: list[str]
    constraints_detected: list[str]
    pruning_decisions: list[Pruning]
    self_corrections: list[SelfCorrection]
    explicit_plan: list[str] | None
    multi_step_reasoning: bool
    used_terminal: bool
    used_rag: bool
    used_web_search: bool
    parallel_tools: bool
    tool_efficiency: ToolEfficiency
    error_recovery: ErrorRecovery
    # enhanced signals
    assumptions: list[Assumption]
    validation_checks: list[ValidationCheck]
    counterfactual_paths: list[str]
    provenance: Provenance
    safety_signals: SafetySignals
    self_critique: list[str]
    edit_history: EditHistory
    preference_ranking: list[str]
    token_confidence: float | None  # Claude Code exposes no log-probabilities: always None
