"""Registry versions out to Ollama (cc_capture.deploy.release and `ccd deploy|rollback`): only the
gated champion is deployed, a rollback retires the model it leaves with the reason and restores the
previous champion, a failed deploy leaves the registry as it was but for the record of the attempt,
and the pending champion is deployed by the next attempt. Against the Ollama test double."""

from __future__ import annotations

import json

import pytest

from cc_capture.config import Settings
from cc_capture.config import DeploySettings
from cc_capture.deploy.release import deploy_version, pending, rollback_version
from cc_capture.deploy.server import DeployError, Fault
from cc_capture.evaluate import registry
from cc_capture.evaluate.registry import ModelStatus
from support.ollama_double import OllamaDouble
from test_deploy import make_artifact


@pytest.fixture
def double():
    with OllamaDouble() as d:
        yield d


def _settings(double) -> Settings:
    return Settings(deploy=DeploySettings(ollama_host=double.url))


def _model(db, tmp_path, n: int, champion: bool = True, exported: bool = True) -> int:
    folder = tmp_path / f"m{n}"
    folder.mkdir()
    model = registry.register(db, base_model="tiny", runs=[f"run{n}"], path=folder, sha256=f"{n:064x}",
                              reasons=["test"])
    if exported:
        a = make_artifact(tmp_path, model.version)
        registry.add_artifacts(db, model.version, {"gguf": {"q4_k_m": {"path": str(a.path), "sha256": a.sha256,
                                                                      "bytes": a.path.stat().st_size}}})
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
