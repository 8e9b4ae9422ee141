"""Registry versions out to Ollama: export a version (its GGUFs and their checks become the model's
artifacts), deploy the champion (only a model that passed the gate; never one a rollback retired),
roll back (the rolled-back model retired with the reason, the previous champion restored). What
`ccd export|deploy|rollback` and the pipeline's last steps call. Light: the heavy work of export
runs in its subprocess."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import msgspec

from cc_capture import store
from cc_capture.config import Settings
from cc_capture.deploy import records
from cc_capture.deploy.records import Action, Outcome
from cc_capture.config import Quantization
from cc_capture.deploy.deployer import Artifact, Result, deploy, rollback, rollback_target
from cc_capture.deploy.server import DeployError, Fault
from cc_capture.deploy import shipping
from cc_capture.evaluate import registry
from cc_capture.evaluate.evaluator import GGUF, EvaluationError
from cc_capture.evaluate.metrics import COMPOSITE
from cc_capture.evaluate.registry import Model, ModelStatus
from cc_capture.export.exporter import ExportFailed, run_export
from cc_capture.export.spec import ExportResult
from cc_capture.paths import Paths


def resolve(db: store.Database, version: int | None) -> Model:
    """The named version, else the champion."""
    model = registry.get(db, version) if version is not None else registry.champion(db)
    if model is None:
        raise DeployError(Fault.NOT_GATED, f"no model v{version}" if version is not None else "no champion yet",
                          "`ccd models list` shows the versions; `ccd pipeline run` trains and gates one")
    return model


def _figures(result: ExportResult) -> dict[str, Any]:
    return {q: {"bytes": f.bytes, "next_token_agreement": round(f.verification.next_token_agreement, 4),
                "exact_sequences": f.verification.exact_sequences, "prompts": f.verification.prompts}
            for q, f in result.files.items()} | {"timings_s": result.timings_s}


def export_version(db: store.Database, paths: Paths, settings: Settings, version: int | None = None,
                   quantizations: list[Quantization] | None = None,
                   on_step: Callable[[str], None] | None = None) -> tuple[Model, ExportResult]:
    """Export a version (default: the champion) and evaluate each asked-for GGUF on the items it was
    gated on; the files, their sha256, checks and figures go to its artifacts."""
    model = resolve(db, version)
    wanted = quantizations or [settings.deploy.quantization]
    name = f"{settings.deploy.model_name.replace('/', '-')}-v{model.version}"
    try:
        result = run_export(paths, version=model.version, model_dir=Path(model.path), name=name,
                            quantizations=wanted, dataset_dir=model.dataset_path, on_step=on_step)
        evaluations = shipping.evaluate_files(db, paths, settings, model, {
            q.value: GGUF(result.files[q.value].path, result.files[q.value].sha256, q.value) for q in wanted},
            on_step)
    except EvaluationError as e:
        registry.set_status(db, model.version, model.status, [f"export failed: its GGUF could not be evaluated: {e}"],
                            _figures(result))
        raise ExportFailed(f"v{model.version}'s GGUF could not be evaluated: {e}", result) from e
    except ExportFailed as e:
        registry.set_status(db, model.version, model.status, [f"export failed: {e}"],
                            _figures(e.result) if e.result else None)
        raise
    gguf = dict(model.artifacts.get("gguf", {})) | {q: {"path": f.path, "sha256": f.sha256, "bytes": f.bytes,
                                                         "verification": msgspec.to_builtins(f.verification),
                                                         "evaluation": evaluations.get(q)}
                                                     for q, f in result.files.items()}
    registry.add_artifacts(db, model.version, {"gguf": gguf, "exported_at": store.iso(time.time())})
    scored = "; ".join(f"{q} GGUF {COMPOSITE} {e['metrics'][COMPOSITE]} on {e['items']} items (HF model "
                       f"{e['hf_metrics'][COMPOSITE]})" for q, e in evaluations.items())
    registry.set_status(db, model.version, model.status,
                        [f"exported to GGUF ({', '.join(result.files)}); the f16 file matched the HF model token "
                         f"for token; {scored}"], _figures(result))
    return registry.get(db, model.version), result


def artifact_of(db: store.Database, quantization: Quantization) -> Callable[[int], Artifact | None]:
    def find(version: int) -> Artifact | None:
        model = registry.get(db, version)
        entry = (model.artifacts.get("gguf", {}) if model else {}).get(quantization.value)
        return Artifact(version, Path(entry["path"]), entry["sha256"], quantization.value) if entry else None

    return find


def deploy_version(db: store.Database, settings: Settings, version: int | None = None, automatic: bool = False,
                   on_status: Callable[[str], None] | None = None) -> Result:
    """Deploy a version (default: the champion) that passed the gate and was exported."""
    model = resolve(db, version)
    if model.status is not ModelStatus.CHAMPION:
        raise DeployError(Fault.NOT_GATED, f"v{model.version} is {model.status.value}, not the champion: only a "
                          "model that passed the gate is deployed", "`ccd models show "
                          f"{model.version}` says why; `ccd rollback {model.version}` restores an earlier champion")
    if automatic and model.version in records.rolled_back(db, settings.deploy.alias):
        raise DeployError(Fault.NOT_GATED, f"v{model.version} was rolled back: it is never deployed again "
                          "automatically", f"Deploy it by hand if you mean to: `ccd deploy {model.version}`")
    artifact = artifact_of(db, settings.deploy.quantization)(model.version)
    if artifact is None:
        raise DeployError(Fault.NOT_EXPORTED, f"v{model.version} has no {settings.deploy.quantization.value} "
                          "GGUF", f"Export it: `ccd export {model.version}`")
    decision = shipping.decide(db, settings, model, artifact)
    if not decision.ship:
        now = records.current(db, settings.deploy.alias)
        error = DeployError(Fault.QUANTIZED_WORSE, f"v{model.version}'s {artifact.quantization} GGUF, the file that "
                            f"would be deployed, fails the deploy gate: {'; '.join(decision.reasons)}",
                            "Keep the deployed model, or export a finer quantization ([deploy] quantization = "
                            f"\"q8_0\", then `ccd export {model.version}` and `ccd deploy {model.version}`)")
        records.record(db, action=Action.DEPLOY, model_version=model.version, tag=settings.deploy.tag(model.version),
                       alias=settings.deploy.alias, host=settings.deploy.host(), status=Outcome.FAILED,
                       started_at=time.time(), quantization=artifact.quantization,
                       previous_version=now.model_version if now else None, fault=error.fault.value, error=str(error))
        registry.set_status(db, model.version, model.status, [f"not deployed: {r}" for r in decision.reasons],
                            {"deploy_gate": decision.as_json()})
        raise error
    try:
        result = deploy(db, settings.deploy, artifact, on_status)
    except DeployError as e:
        registry.set_status(db, model.version, model.status, [f"deploy to Ollama failed ({e.fault.value}): {e}"])
        raise
    d = result.deployment
    registry.set_status(db, model.version, ModelStatus.CHAMPION, [f"deployed to Ollama as {d.tag} ({d.alias}) at "
                                                                  f"{d.host}"], {"digest": d.digest})
    return result


def exported(db: store.Database, settings: Settings, version: int) -> bool:
    return artifact_of(db, settings.deploy.quantization)(version) is not None


def summary(result: ExportResult) -> str:
    """One line for the pipeline's record: each file's size and agreement with the HF model."""
    return "; ".join(f"{q} {f.bytes:,} bytes, next-token agreement {f.verification.next_token_agreement:.3f}"
                     for q, f in result.files.items())


def pending(db: store.Database, settings: Settings) -> int | None:
    """The champion's version when the alias does not point at it yet (and no rollback retired it)."""
    champion = registry.champion(db)
    if champion is None:
        return None
    now = records.current(db, settings.deploy.alias)
    if now is not None and now.model_version == champion.version:
        return None
    return None if champion.version in records.rolled_back(db, settings.deploy.alias) else champion.version


def rollback_version(db: store.Database, settings: Settings, version: int | None = None, reason: str = "",
                     on_status: Callable[[str], None] | None = None) -> Result:
    """Point the alias back (at the previous champion, or the named version); the model rolled back
    from is retired with the reason, the one restored becomes the champion again."""
    current, target = rollback_target(db, settings.deploy, version)
    resolve(db, target)
    why = reason or "rolled back by hand"
    result = rollback(db, settings.deploy, target, why, artifact_of(db, settings.deploy.quantization), on_status)
    registry.set_status(db, current, ModelStatus.RETIRED, [f"rolled back to v{target}: {why}"])
    registry.set_status(db, target, ModelStatus.CHAMPION, [f"restored by a rollback from v{current}: {why}"])
    return result
