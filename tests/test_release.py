"""Registry versions out to Ollama (cc_capture.deploy.release and `ccd deploy|rollback`): only the
gated champion is deployed, a rollback retires the model it leaves with the reason and restores the
previous champion, a failed deploy leaves the registry as it was but for the record of the attempt,
and the pending champion is deployed by the next attempt. Against the Ollama test double."""

from __future__ import annotations

import json
import time

import pytest

from cc_capture.config import Settings
from cc_capture.config import DeploySettings
from cc_capture.deploy import records
from cc_capture.deploy import shipping
from cc_capture.deploy.release import deploy_version, pending, rollback_version
from cc_capture.deploy.server import DeployError, Fault
from cc_capture.evaluate import registry
from cc_capture.evaluate.metrics import COMPOSITE, METRICS
from cc_capture.evaluate.registry import Evaluation, ModelStatus
from cc_capture.evaluate.scoring import Summary
from support.ollama_double import OllamaDouble
from test_deploy import make_artifact


@pytest.fixture
def double():
    with OllamaDouble() as d:
        yield d


def _settings(double) -> Settings:
    return Settings(deploy=DeploySettings(ollama_host=double.url))


EVAL_SET = "e" * 64


def _scored(db, sha256: str, similarity: float, valid: float = 1.0) -> Evaluation:
    """Figures on the eval set EVAL_SET, as the evaluator saves them (the GGUF ones are measured for
    real in test_export; here they only drive the deploy decision)."""
    metrics = {m: None for m in METRICS} | {"valid_call_rate": valid, COMPOSITE: similarity}
    evaluation = Evaluation(sha256, EVAL_SET, time.time(), 10, 5, Summary(metrics, {m: 10 for m in metrics},
                                                                          {m: None for m in metrics}), [], {})
    registry.save(db, evaluation)
    return evaluation


def _model(db, tmp_path, n: int, champion: bool = True, exported: bool = True, hf: float | None = None,
           gguf: float | None = None, valid: float = 1.0) -> int:
    """Version n, exported to a q4_k_m GGUF whose figures (default: 0.4 + n/10, as its HF model's) were
    recorded at export."""
    folder = tmp_path / f"m{n}"
    folder.mkdir()
    model = registry.register(db, base_model="tiny", runs=[f"run{n}"], path=folder, sha256=f"{n:064x}",
                              reasons=["test"])
    if exported:
        a = make_artifact(tmp_path, model.version)
        hf = 0.4 + n / 10 if hf is None else hf
        _scored(db, model.sha256, hf)
        figures = shipping.figures(_scored(db, a.sha256, hf if gguf is None else gguf, valid))
        registry.add_artifacts(db, model.version, {"gguf": {"q4_k_m": {
            "path": str(a.path), "sha256": a.sha256, "bytes": a.path.stat().st_size,
            "evaluation": figures | {"hf_metrics": {COMPOSITE: hf}}}}})
    if champion:
        registry.set_status(db, model.version, ModelStatus.CHAMPION, ["passed the gate"])
    return model.version


def test_only_the_gated_and_exported_champion_is_deployed(db, double, tmp_path):
    settings = _settings(double)
    candidate = _model(db, tmp_path, 1, champion=False)
    with pytest.raises(DeployError) as e:
        deploy_version(db, settings, candidate)
    assert e.value.fault is Fault.NOT_GATED and "only a model that passed the gate" in str(e.value)
    bare = _model(db, tmp_path, 2, exported=False)
    with pytest.raises(DeployError) as e:
        deploy_version(db, settings)
    assert e.value.fault is Fault.NOT_EXPORTED and f"ccd export {bare}" in str(e.value)
    assert not double.models


def test_deploy_rollback_and_the_registry(db, double, tmp_path):
    settings = _settings(double)
    v1 = _model(db, tmp_path, 1)
    assert pending(db, settings) == v1
    deploy_version(db, settings)
    assert pending(db, settings) is None
    v2 = _model(db, tmp_path, 2)
    assert pending(db, settings) == v2 and registry.get(db, v1).status is ModelStatus.RETIRED

    double.fail_create_after = 1  # a failed deploy: registry unchanged but for the record, alias untouched
    with pytest.raises(DeployError):
        deploy_version(db, settings, automatic=True)
    assert registry.get(db, v2).status is ModelStatus.CHAMPION
    assert "deploy to Ollama failed (create_failed)" in registry.events(db, v2)[-1]["reasons"][0]
    assert double.models["cc-capture:latest"] is double.models["cc-capture:v1"]
    assert pending(db, settings) == v2  # the next pipeline run retries it
    double.heal()
    deploy_version(db, settings, automatic=True)
    assert double.models["cc-capture:latest"] is double.models["cc-capture:v2"]

    rollback_version(db, settings, reason="it stopped calling tools")
    assert double.models["cc-capture:latest"] is double.models["cc-capture:v1"]
    assert registry.get(db, v2).status is ModelStatus.RETIRED
    assert registry.events(db, v2)[-1]["reasons"] == [f"rolled back to v{v1}: it stopped calling tools"]
    assert registry.champion(db).version == v1
    assert pending(db, settings) is None
    with pytest.raises(DeployError) as e:  # never deployed again automatically
        registry.set_status(db, v2, ModelStatus.CHAMPION, ["promoted by hand"])
        deploy_version(db, settings, automatic=True)
    assert e.value.fault is Fault.NOT_GATED and "rolled back" in str(e.value)


def test_ccd_deploy_and_rollback(paths, db, double, tmp_path, monkeypatch):
    from test_cli import ccd

    monkeypatch.setenv("CC_CAPTURE_DEPLOY__OLLAMA_HOST", double.url)
    v1 = _model(db, tmp_path, 1)
    out = json.loads(ccd("deploy", "--json").stdout)
    assert (out["version"], out["tag"], out["alias"], out["action"]) == (v1, "cc-capture:v1", "cc-capture:latest",
                                                                          "deploy")
    refused = ccd("rollback", check=False)
    assert refused.returncode == 1 and "no earlier deployed version" in refused.stderr
    _model(db, tmp_path, 2)
    assert json.loads(ccd("deploy", "--json").stdout)["version"] == 2
    back = json.loads(ccd("rollback", "--reason", "worse", "--json").stdout)
    assert (back["action"], back["version"], back["previous_version"], back["reason"]) == ("rollback", v1, 2, "worse")
    monkeypatch.setenv("CC_CAPTURE_DEPLOY__OLLAMA_HOST", "http://127.0.0.1:9")
    failed = ccd("deploy", "1", check=False)
    assert failed.returncode == 1 and "not running" in failed.stderr


def test_the_pipeline_exports_and_deploys_the_pending_champion(paths, db, double, tmp_path, monkeypatch):
    from cc_capture.pipeline.run import Skip, _ship

    settings = _settings(double)
    v1 = _model(db, tmp_path, 1)
    assert _ship("export", db, paths, settings) == f"v{v1} was exported before"
    assert f"deployed as cc-capture:v{v1}" in _ship("deploy", db, paths, settings)
    with pytest.raises(Skip, match="the deployed model is the champion"):
        _ship("deploy", db, paths, settings)
    _model(db, tmp_path, 2, exported=False)
    monkeypatch.setenv("CC_CAPTURE_LLAMA_CPP_CONVERTER", str(tmp_path / "no-converter"))
    with pytest.raises(Skip, match="export needs") as skipped:
        _ship("export", db, paths, settings)
    assert skipped.value.final


def test_a_gguf_that_lost_too_much_to_quantization_is_not_deployed(db, double, tmp_path):
    """Evaluate what you ship: the q4_k_m file scores 0.10 below its own HF model (more than
    max_quantization_loss): refused, recorded as a failed attempt, nothing in Ollama; allowed once the
    tolerance is raised."""
    settings = _settings(double)
    v1 = _model(db, tmp_path, 1, hf=0.6, gguf=0.5)
    with pytest.raises(DeployError) as e:
        deploy_version(db, settings, automatic=True)
    assert e.value.fault is Fault.QUANTIZED_WORSE
    assert ("q4_k_m GGUF behavioural_similarity 0.5000 vs its HF model's 0.6000 (-0.1000): loses more than "
            "[deploy] max_quantization_loss 0.02") in str(e.value) and "ccd export 1" in str(e.value)
    assert not double.models and pending(db, settings) == v1
    failed = records.history(db, settings.deploy.alias, status=None)
    assert [(d.status.value, d.fault, d.model_version) for d in failed] == [("failed", "quantized_worse", v1)]
    last = registry.events(db, v1)[-1]
    assert last["status"] == "champion" and last["reasons"][0].startswith("not deployed: q4_k_m GGUF")
    assert last["figures"]["deploy_gate"]["ship"] is False
    settings.deploy.max_quantization_loss = 0.2
    assert deploy_version(db, settings, automatic=True).deployment.model_version == v1


def test_a_gguf_below_the_deployed_one_is_not_deployed(db, double, tmp_path):
    """The new champion's file must not score below the deployed file on the same items, nor drop its
    valid_call_rate by more than max_valid_call_drop; `ccd status` shows the deployed file's figure."""
    from cc_capture.deploy.status import deployed

    settings = _settings(double)
    _model(db, tmp_path, 1, hf=0.62, gguf=0.61)
    deploy_version(db, settings)
    assert deployed(db, settings.deploy)["behavioural_similarity"] == 0.61  # the GGUF's, not the HF model's
    v2 = _model(db, tmp_path, 2, hf=0.61, gguf=0.60)
    with pytest.raises(DeployError) as e:
        deploy_version(db, settings, automatic=True)
    assert e.value.fault is Fault.QUANTIZED_WORSE
    assert "behavioural_similarity 0.6000 vs the deployed v1's GGUF 0.6100: below what is deployed" in str(e.value)
    assert double.models["cc-capture:latest"] is double.models["cc-capture:v1"]
    v3 = _model(db, tmp_path, 3, hf=0.7, gguf=0.7, valid=0.9)
    with pytest.raises(DeployError, match="valid_call_rate 0.9000 vs the deployed GGUF's 1.0000: drops by more"):
        deploy_version(db, settings, v3)
    v4 = _model(db, tmp_path, 4, hf=0.7, gguf=0.69)
    assert deploy_version(db, settings, v4).deployment.model_version == v4
    assert v2 != v4 and records.current(db, settings.deploy.alias).model_version == v4


def test_a_gguf_never_evaluated_is_not_deployed(db, double, tmp_path):
    settings = _settings(double)
    v1 = _model(db, tmp_path, 1)
    model = registry.get(db, v1)
    entry = model.artifacts["gguf"]["q4_k_m"]
    registry.add_artifacts(db, v1, {"gguf": {"q4_k_m": {k: v for k, v in entry.items() if k != "evaluation"}}})
    with pytest.raises(DeployError) as e:
        deploy_version(db, settings)
    assert e.value.fault is Fault.QUANTIZED_WORSE and "has no evaluation" in str(e.value)
    assert f"ccd export {v1}" in str(e.value) and not double.models
