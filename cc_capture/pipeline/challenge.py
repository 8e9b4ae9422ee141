"""`ccd eval` as a library call: score a model on the eval set of its dataset, score the champion
(or another version) on exactly the same items, and let the gate decide. Against the champion the
decision is applied and recorded (promoted or rejected, with its reasons and figures); a model
that fails to evaluate changes nothing but its own history."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cc_capture import reads, store
from cc_capture.config import Paths, Settings
from cc_capture.evaluate import registry
from cc_capture.evaluate.evaluator import EvaluationError, evaluate
from cc_capture.evaluate.gate import Decision, decide
from cc_capture.evaluate.items import EvalSet, EvalSetError, from_dataset
from cc_capture.evaluate.champion import ModelStatus
from cc_capture.evaluate.registry import Evaluation, Model
from cc_capture.evaluate.scoring import paired_difference
from cc_capture.pipeline.candidates import CandidateError, base_model, ensure_champion, from_run
from cc_capture.records import Phase, RunStatus

CHAMPION = "champion"


class ChallengeError(Exception):
    """The evaluation can't be done as asked; the message says why."""


@dataclass(frozen=True)
class Report:
    model: Model
    evalset: EvalSet
    evaluation: Evaluation
    against: Model | None
    against_evaluation: Evaluation | None
    decision: Decision | None
    applied: bool  # the decision was made against the champion and recorded

    def as_json(self) -> dict[str, Any]:
        """The `ccd eval --json` shape (README)."""
        e = self.evaluation
        return {
            "model": {"version": self.model.version, "runs": self.model.runs, "base_model": self.model.base_model,
                      "sha256": self.model.sha256},
            "eval_set": self.evalset.as_json(), "metrics": e.summary.metrics, "intervals": e.summary.intervals,
            "counts": e.summary.counts, "per_tool": e.summary.per_tool, "timings": e.timings,
            "against": None if self.against is None else {
                "version": self.against.version, "metrics": self.against_evaluation.summary.metrics},
            "decision": None if self.decision is None else {
                "promote": self.decision.promote, "reasons": self.decision.reasons,
                "difference": self.decision.difference, "p_value": self.decision.p_value,
                "interval": self.decision.interval, "applied": self.applied},
        }


def latest_sft_dataset(db: store.Database, paths: Paths) -> Path:
    run = reads.latest_completed_run(db, Phase.SFT)
    if run and run.dataset_path and Path(run.dataset_path).is_dir():
        return Path(run.dataset_path)
    built = sorted(paths.datasets.glob("sft-*")) if paths.datasets.is_dir() else []
    if not built:
        raise ChallengeError("no SFT dataset to take the eval split from: `ccd dataset build` makes one")
    return built[-1]


def resolve(db: store.Database, paths: Paths, settings: Settings, ref: str | None) -> Model:
    """RUN_ID, VERSION (`3` or `v3`), `base`, or nothing: the latest completed SFT/DPO run."""
    try:
        if ref is None:
            latest = [r for r in reads.runs(db, 50) if r.status == RunStatus.COMPLETED]
            if not latest:
                raise ChallengeError("no completed training run to evaluate: `ccd train` first, or `ccd eval base`")
            return from_run(db, paths, latest[0].run_id)
        if ref == "base":
            return base_model(db, settings.train.base_model)
        if ref.lstrip("v").isdigit():
            model = registry.get(db, int(ref.lstrip("v")))
            if model is None:
                raise ChallengeError(f"no model version {ref}; `ccd models list` shows them")
            return model
        return from_run(db, paths, ref)
    except CandidateError as e:
        raise ChallengeError(str(e)) from e


def challenge(db: store.Database, paths: Paths, settings: Settings, model: Model, against: str = CHAMPION,
              max_items: int | None = None, on_progress: Callable[[str, int, int], None] | None = None) -> Report:
    """Evaluate `model` and compare it with `against` (the champion, or a version) on the same items."""
    cfg = settings.evaluate
    try:
        dataset = Path(model.dataset_path) if model.dataset_path else latest_sft_dataset(db, paths)
        evalset = from_dataset(dataset, max_items or cfg.max_items, store.spent_sessions(db))
        if against == CHAMPION:
            other = ensure_champion(db, model.base_model)
        else:
            other = registry.get(db, int(against.lstrip("v"))) if against.lstrip("v").isdigit() else None
            if other is None:
                raise ChallengeError(f"--against must be 'champion' or a model version, not {against!r}")
    except (EvalSetError, CandidateError) as e:
        raise ChallengeError(str(e)) from e

    def progress(label: str):
        return (lambda done, total: on_progress(label, done, total)) if on_progress else None

    try:
        evaluation = evaluate(db, paths, model, evalset, cfg, progress(f"v{model.version}"))
    except EvaluationError as e:
        registry.set_status(db, model.version, model.status, [f"evaluation failed: {e}"])
        raise
    if other.version == model.version:
        return Report(model, evalset, evaluation, None, None, None, False)
    other_evaluation = evaluate(db, paths, other, evalset, cfg, progress(f"v{other.version}"))
    difference, p_value, interval = paired_difference(evaluation.item_scores, other_evaluation.item_scores,
                                                      cfg.weights, cfg.bootstrap_samples, cfg.seed)
    decision = decide(evaluation.summary, other_evaluation.summary, difference, p_value, interval, cfg)
    applied = against == CHAMPION
    if applied:
        figures = {"against": other.version, "eval_set_hash": evalset.hash, "items": len(evalset.items),
                   "metrics": evaluation.summary.metrics, "against_metrics": other_evaluation.summary.metrics,
                   "difference": difference, "p_value": p_value, "interval": interval}
        status = ModelStatus.CHAMPION if decision.promote else ModelStatus.REJECTED
        registry.set_status(db, model.version, status, decision.reasons, figures)
        model = registry.get(db, model.version)
    return Report(model, evalset, evaluation, other, other_evaluation, decision, applied)
