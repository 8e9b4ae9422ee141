"""Evaluate what you ship: the figures that decide a deploy are the exported GGUF's, measured in
llama.cpp (the runtime Ollama serves it with) on the very items the model was gated on, with the
same parser and metrics as its HF evaluation (cc_capture.evaluate). Export records them per file;
deploy reads them and decides with `gate.decide_shipping`. Light: generation runs in evaluate's
worker subprocess."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from cc_capture import store
from cc_capture.config import Settings
from cc_capture.deploy import records
from cc_capture.deploy.deployer import Artifact
from cc_capture.evaluate import items as items_mod
from cc_capture.evaluate import registry
from cc_capture.evaluate.evaluator import GGUF, EvaluationError, evaluate
from cc_capture.evaluate.gate import ShipDecision, decide_shipping
from cc_capture.evaluate.items import EvalSet, EvalSetError
from cc_capture.evaluate.registry import Evaluation, Model
from cc_capture.paths import Paths


def gate_items(db: store.Database, paths: Paths, settings: Settings, model: Model) -> EvalSet:
    """The eval set the model was last scored on (the gate's items), else its dataset's eval split."""
    scores = registry.scores_over_time(db, model.sha256)
    if scores:
        try:
            return items_mod.load(paths.evalsets, scores[-1]["eval_set_hash"])
        except EvalSetError:
            pass  # the frozen set was deleted: fall back to the dataset
    if not model.dataset_path or not Path(model.dataset_path).is_dir():
        raise EvaluationError(f"v{model.version} was never evaluated and has no dataset to take eval items from: "
                              "nothing to score its GGUF on (`ccd eval` a model that has one)")
    try:
        return items_mod.from_dataset(Path(model.dataset_path), settings.evaluate.max_items,
                                      store.spent_sessions(db))
    except EvalSetError as e:
        raise EvaluationError(str(e)) from e


def figures(evaluation: Evaluation) -> dict[str, Any]:
    """What the registry keeps of one evaluation beside an artifact."""
    s = evaluation.summary
    return {"eval_set_hash": evaluation.eval_set_hash, "items": evaluation.items, "traces": evaluation.traces,
            "metrics": s.metrics, "counts": s.counts, "intervals": s.intervals}


def evaluate_files(db: store.Database, paths: Paths, settings: Settings, model: Model, files: dict[str, GGUF],
                   on_step: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Each file's figures on the gate's items, with its HF model's (`hf_metrics`) and, when another
    version is deployed, that version's GGUF scored on the same items (cached, so scored once)."""
    evalset = gate_items(db, paths, settings, model)
    own = evaluate(db, paths, model, evalset, settings.evaluate)
    out = {}
    for q, gguf in files.items():
        if on_step:
            on_step(f"evaluate_{q}")
        out[q] = figures(evaluate(db, paths, model, evalset, settings.evaluate, gguf=gguf)) | {
            "hf_metrics": own.summary.metrics}
    now = records.current(db, settings.deploy.alias)
    deployed = registry.get(db, now.model_version) if now and now.model_version != model.version else None
    entry = (deployed.artifacts.get("gguf", {}).get(now.quantization or "") if deployed else None) or {}
    if deployed and entry and Path(entry["path"]).is_file():
        if on_step:
            on_step(f"evaluate_deployed_v{deployed.version}")
        try:
            evaluate(db, paths, deployed, evalset, settings.evaluate,
                     gguf=GGUF(entry["path"], entry["sha256"], now.quantization or ""))
        except EvaluationError:
            pass  # then the deploy decision says the deployed file could not be compared
    return out


def decide(db: store.Database, settings: Settings, model: Model, artifact: Artifact) -> ShipDecision:
    """The deploy decision for one exported file, from the figures export recorded."""
    entry = model.artifacts.get("gguf", {}).get(artifact.quantization) or {}
    recorded = entry.get("evaluation") or {}
    set_hash = recorded.get("eval_set_hash")
    shipped = registry.cached(db, artifact.sha256, set_hash) if set_hash else None
    own = registry.cached(db, model.sha256, set_hash) if set_hash else None
    if shipped is None or own is None:
        return ShipDecision(False, [f"v{model.version}'s {artifact.quantization} GGUF has no evaluation beside its "
                                    f"HF model's: `ccd export {model.version}` exports and evaluates it"])
    now = records.current(db, settings.deploy.alias)
    other = now.model_version if now and now.model_version != model.version else None
    deployed = (registry.cached(db, now.digest.removeprefix("sha256:"), set_hash)
                if other is not None and now.digest else None)
    return decide_shipping(artifact.quantization, shipped.summary, own.summary, deployed and deployed.summary, other,
                           settings.deploy.max_quantization_loss, settings.evaluate)
