"""What the extractor reads (a TraceView: a stored trace and its session's earlier edits) and what
it produces (Signals), as plain typed values."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from cc_capture.records import ToolCall, Trace

CallView = ToolCall  # what the extractor reads of a call: the read model's tool call


@dataclass
class TraceView:
    """One stored trace (the read model, `cc_capture.records.Trace`, loaded by `cc_capture.reads`)
    with what the extractor also needs from the rest of its session."""

    trace: Trace
    prior_session_edits: dict[str, int] = field(default_factory=dict)  # file → edits in earlier traces

    @property
    def trace_id(self) -> str:
        return self.trace.trace_id

    @property
    def prompt(self) -> str:
        return self.trace.prompt or ""

    @property
    def final_response(self) -> str:
        return self.trace.final_response or ""

    @property
    def status(self) -> str:
        return self.trace.status

    @property
    def calls(self) -> list[ToolCall]:
        return self.trace.tool_calls

    @property
    def main_calls(self) -> list[ToolCall]:
        return self.trace.main_calls

    @property
    def duration_s(self) -> float | None:
        return self.trace.duration_s

    @property
    def origin(self) -> str:
        """store.Origin: 'local' is the local model's session, never Claude's example."""
        return self.trace.origin.value

    @property
    def feedback(self) -> str | None:
        """'up', 'down' or None."""
        return self.trace.feedback.rating if self.trace.feedback else None


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
