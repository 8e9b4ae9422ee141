"""Deploy and rollback against the Ollama test double (tests/support/ollama_double.py, written from
Ollama's API docs and server code), driven through the official `ollama` client."""

from __future__ import annotations

import json
import socket
import threading

import ollama
import pytest

from cc_capture.config import DeploySettings
from cc_capture.datasets.templates import OLLAMA_TEMPLATE
from cc_capture.deploy import records
from cc_capture.deploy.deployer import STOP_TOKENS, Artifact, deploy, rollback, rollback_target
from cc_capture.deploy.records import Action, Outcome
from cc_capture.deploy.server import DeployError, Fault, file_sha256
from cc_capture.loopback import free_port
from support.gguf_file import write_header_only
from support.ollama_double import OllamaDouble, capabilities, template_vars


@pytest.fixture
def double():
    with OllamaDouble() as d:
        yield d


@pytest.fixture
def settings(double) -> DeploySettings:
    return DeploySettings(ollama_host=double.url, num_ctx=32768, keep_versions=2)


def make_artifact(tmp_path, version: int, seed: str | None = None) -> Artifact:
    """A small valid GGUF (header only) standing for version `version`'s q4_k_m export."""
    path = write_header_only(tmp_path / f"cc-capture-v{version}-q4_k_m.gguf", {
        "general.architecture": "llama", "general.file_type": 15, "general.name": seed or f"v{version}",
        "tokenizer.chat_template": "{{ messages }}"})
    return Artifact(version, path, file_sha256(path), "q4_k_m")


def artifacts_of(*items: Artifact):
    by_version = {a.version: a for a in items}
    return by_version.get


def test_deploy_creates_the_version_and_points_the_alias(db, double, settings, tmp_path):
    a1 = make_artifact(tmp_path, 1)
    result = deploy(db, settings, a1)

    client = ollama.Client(host=double.url)
    shown = client.show("cc-capture:v1")
    assert "tools" in shown.capabilities
    assert shown.template == OLLAMA_TEMPLATE.read_text()
    assert double.models["cc-capture:v1"].parameters == {"num_ctx": 32768, "stop": STOP_TOKENS}
    tags = {m.model: m.digest for m in client.list().models}
    assert tags["cc-capture:latest"] == tags["cc-capture:v1"]
    d = result.deployment
    assert (d.action, d.status, d.model_version, d.tag, d.alias) == (
        Action.DEPLOY, Outcome.SUCCEEDED, 1, "cc-capture:v1", "cc-capture:latest")
    assert d.host == double.url and d.digest == f"sha256:{a1.sha256}" and d.previous_version is None
    assert result.uploaded and result.ollama_version == double.version
    assert records.current(db, settings.alias).model_version == 1
    out = result.as_json()
    assert {"version", "tag", "alias", "host", "digest", "at", "previous_version", "pruned"} <= set(out)


def test_upload_is_skipped_when_ollama_has_the_digest(db, double, settings, tmp_path):
    a1 = make_artifact(tmp_path, 1, seed="same")
    a2 = make_artifact(tmp_path, 2, seed="same")
    assert a1.sha256 == a2.sha256
    deploy(db, settings, a1)
    second = deploy(db, settings, a2)
    assert not second.uploaded
    assert [r for r in double.requests if r[0] == "POST" and r[1].startswith("/api/blobs/")] == [
        ("POST", f"/api/blobs/sha256:{a1.sha256}")]
    assert second.deployment.previous_version == 1


def test_old_versions_are_pruned_but_never_the_alias_target_or_previous_champion(db, double, tmp_path):
    settings = DeploySettings(ollama_host=double.url, keep_versions=1)
    arts = [make_artifact(tmp_path, v) for v in (1, 2, 3)]
    for a in arts[:2]:
        deploy(db, settings, a)
    assert {"cc-capture:v1", "cc-capture:v2"} <= set(double.models)  # v1 is the previous champion
    result = deploy(db, settings, arts[2])
    assert result.pruned == ["cc-capture:v1"]
    assert set(double.models) == {"cc-capture:v2", "cc-capture:v3", "cc-capture:latest"}
    assert f"sha256:{arts[0].sha256}" not in double.blobs  # its blob was used by no other model


def test_rollback_points_the_alias_at_the_previous_champion_and_refuses_when_none_is_left(db, double, settings,
                                                                                         tmp_path):
    a1, a2 = make_artifact(tmp_path, 1), make_artifact(tmp_path, 2)
    deploy(db, settings, a1)
    deploy(db, settings, a2)
    current, target = rollback_target(db, settings, None)
    assert (current, target) == (2, 1)
    result = rollback(db, settings, target, "answers got worse", artifacts_of(a1, a2))
    assert double.models["cc-capture:latest"] is double.models["cc-capture:v1"]
    d = result.deployment
    assert (d.action, d.model_version, d.previous_version, d.reason) == (Action.ROLLBACK, 1, 2, "answers got worse")
    assert records.rolled_back(db, settings.alias) == {2}
    with pytest.raises(DeployError) as e:
        rollback_target(db, settings, None)
    assert e.value.fault is Fault.NOTHING_TO_ROLL_BACK and "ccd rollback VERSION" in str(e.value)
    assert records.tags(db, settings.alias) == {1: ["cc-capture:v1", "cc-capture:latest"], 2: ["cc-capture:v2"]}


def test_rollback_refuses_before_any_deploy(db, settings):
    with pytest.raises(DeployError) as e:
        rollback_target(db, settings, None)
    assert e.value.fault is Fault.NOTHING_TO_ROLL_BACK and "never deployed" in str(e.value)


def test_rollback_to_a_pruned_version_creates_it_again_from_its_file(db, double, tmp_path):
    settings = DeploySettings(ollama_host=double.url, keep_versions=1)
    arts = [make_artifact(tmp_path, v) for v in (1, 2, 3, 4)]
    for a in arts:
        deploy(db, settings, a)
    assert "cc-capture:v1" not in double.models
    rollback(db, settings, 1, "back to the first", artifacts_of(*arts))
    assert double.models["cc-capture:latest"] is double.models["cc-capture:v1"]
    assert "tools" in ollama.Client(host=double.url).show("cc-capture:latest").capabilities


# ---------------------------------------------------------------- faults (issue item 5)


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers: a host that is there but not reachable."""

    def __enter__(self) -> "SilentServer":
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def _accept(self) -> None:
        try:
            while True:
                self.held.append(self.sock.accept()[0])
        except OSError:
            pass

    def __exit__(self, *exc) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


def test_ollama_not_running(db, tmp_path):
    settings = DeploySettings(ollama_host=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DeployError) as e:
        deploy(db, settings, make_artifact(tmp_path, 1))
    assert e.value.fault is Fault.NOT_RUNNING
    assert "not running" in str(e.value) and "ollama serve" in str(e.value)
    assert records.current(db, settings.alias) is None
    assert records.history(db, settings.alias, status=None)[-1].fault == "not_running"


def test_ollama_not_reachable(db, tmp_path):
    with SilentServer() as silent:
        settings = DeploySettings(ollama_host=silent.url, timeout_s=1)
        with pytest.raises(DeployError) as e:
            deploy(db, settings, make_artifact(tmp_path, 1))
    assert e.value.fault is Fault.UNREACHABLE and "did not answer" in str(e.value)
    assert records.history(db, settings.alias, status=None)[-1].fault == "unreachable"


def _fill_the_disk(double, artifact) -> None:
    double.disk_bytes = sum(p.stat().st_size for p in double.blobs.values())


def _change_the_file(double, artifact) -> None:
    artifact.path.write_bytes(artifact.path.read_bytes() + b"\0")


# (the fault, how the double or the file is made to cause it, words the message must hold)
FAULTS = {
    "too_old_0.5.4": (Fault.TOO_OLD, lambda d, a: setattr(d, "version", "0.5.4"), "upgrade ollama to 0.6.4"),
    "too_old_0.6.3": (Fault.TOO_OLD, lambda d, a: setattr(d, "version", "0.6.3"), "upgrade ollama to 0.6.4"),
    "out_of_disk": (Fault.OUT_OF_DISK, _fill_the_disk, "free space"),
    "create_fails_halfway": (Fault.CREATE_FAILED, lambda d, a: setattr(d, "fail_create_after", 2), "unexpected eof"),
    "no_tools_capability": (Fault.NO_TOOLS, lambda d, a: setattr(d, "drop_template", True), "without 'tools'"),
    "file_changed_since_export": (Fault.BLOB_REJECTED, _change_the_file, "export this version again"),
}


@pytest.mark.parametrize("case", list(FAULTS))
def test_a_failed_deploy_changes_nothing_but_its_record_and_the_next_attempt_succeeds(db, double, settings,
                                                                                       tmp_path, case):
    fault, cause, words = FAULTS[case]
    deploy(db, settings, make_artifact(tmp_path, 1))
    before = double.models["cc-capture:latest"]
    cause(double, a2 := make_artifact(tmp_path, 2))
    with pytest.raises(DeployError) as e:
        deploy(db, settings, a2)
    assert e.value.fault is fault, e.value
    assert words in str(e.value).lower()
    assert double.models.get("cc-capture:latest") is before
    assert "cc-capture:v2" not in double.models
    assert records.current(db, settings.alias).model_version == 1
    failed = records.history(db, settings.alias, status=None)[-1]
    assert (failed.status, failed.fault, failed.model_version) == (Outcome.FAILED, fault.value, 2)
    assert failed.error == str(e.value)
    double.heal()  # the cause gone (the next pipeline run, the file exported again): it goes through
    retry = deploy(db, settings, make_artifact(tmp_path, 2))
    assert retry.deployment.status is Outcome.SUCCEEDED and retry.deployment.previous_version == 1
    assert double.models["cc-capture:latest"] is double.models["cc-capture:v2"]


def test_ollama_too_old_for_files_behind_a_dev_version(db, double, settings, tmp_path):
    """A dev build reports 0.0.0: the version check lets it through, its create answer does not."""
    double.version = "0.0.0"
    with pytest.raises(DeployError) as e:
        deploy(db, settings, make_artifact(tmp_path, 1))
    assert e.value.fault is Fault.TOO_OLD and "upgrade ollama" in str(e.value).lower()


# ---------------------------------------------------------------- settings and the double itself


def test_host_comes_from_the_setting_then_ollama_host(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert DeploySettings().host() == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:8080")
    assert DeploySettings().host() == "http://127.0.0.1:8080"
    monkeypatch.setenv("OLLAMA_HOST", "https://ollama.internal")
    assert DeploySettings().host() == "https://ollama.internal:443"
    assert DeploySettings(ollama_host="http://[::1]:9000/").host() == "http://[::1]:9000"
    assert (DeploySettings(model_name="me/agent").tag(3), DeploySettings().alias) == ("me/agent:v3",
                                                                                       "cc-capture:latest")


def test_the_double_computes_capabilities_from_the_template_as_ollama_does():
    assert "tools" in template_vars(OLLAMA_TEMPLATE.read_text())
    gguf = {"general.architecture": "llama"}
    assert capabilities(OLLAMA_TEMPLATE.read_text(), gguf) == ["completion", "tools"]
    assert capabilities('{{ .Prompt }} "{{ .Tools }}" text', gguf) == ["completion", "tools"]
    assert capabilities('{{ .Prompt }}{{ "a .Tools in a string" }}{{/* .Tools */}}', gguf) == ["completion"]
    assert capabilities("{{ .Prompt }}{{ .Suffix }}", gguf) == ["completion", "insert"]
    assert capabilities(None, gguf | {"tokenizer.chat_template": "{% for tool in tools %}"}) == ["completion",
                                                                                                   "tools"]


def test_the_double_checks_digests_and_refuses_what_ollama_refuses(double, tmp_path):
    client = ollama.Client(host=double.url)
    path = write_header_only(tmp_path / "m.gguf", {"general.architecture": "llama", "general.file_type": 15})
    digest = client.create_blob(path)
    with pytest.raises(ollama.ResponseError) as e:
        client._request_raw("POST", f"/api/blobs/sha256:{'0' * 64}", content=b"other bytes")
    assert e.value.status_code == 400 and "digest mismatch" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.create(model="q", files={"m.gguf": digest}, quantize="q8_0")
    assert "only supported for F16" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.create(model="nothing")
    assert e.value.status_code == 400 and "neither 'from' or 'files'" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.copy("absent", "other")
    assert e.value.status_code == 404
    client.create(model="a", files={"m.gguf": digest})
    client.copy("a", "b")
    client.delete("a")
    assert digest in double.blobs  # still used by b
    client.delete("b")
    assert digest not in double.blobs


# ---------------------------------------------------------------- ccd status (issue item 7)


def test_status_shows_the_deployed_model_and_whether_ollama_answers(paths, db, tmp_path):
    from test_cli import ccd

    assert json.loads(ccd("status", "--json").stdout)["deployed"] is None
    with OllamaDouble() as double:
        deploy(db, DeploySettings(ollama_host=double.url), make_artifact(tmp_path, 1))
        shown = json.loads(ccd("status", "--json").stdout)["deployed"]
        assert shown["tag"] == "cc-capture:v1" and shown["version"] == 1 and shown["ollama"] == "reachable"
        assert shown["deployed_at"].endswith("Z") and shown["host"] == double.url
        assert "cc-capture:v1 as cc-capture:latest" in ccd("status").stdout
        ollama.Client(host=double.url).delete("cc-capture:latest")
        assert json.loads(ccd("status", "--json").stdout)["deployed"]["ollama"] == "missing_model"
    assert json.loads(ccd("status", "--json").stdout)["deployed"]["ollama"] == "unreachable"


def test_models_list_shows_which_version_each_tag_points_to(paths, db, tmp_path):
    """`ccd models list` (table and --json `tags`) names the Ollama tags of each version and which
    one the alias points at; a rollback moves the alias. `ccd status --json` has the documented
    `champion` and `deployed` keys."""
    from cc_capture.evaluate import registry
    from cc_capture.evaluate.champion import ModelStatus
    from test_cli import ccd

    for v in (1, 2):
        (tmp_path / f"m{v}").mkdir()
        (tmp_path / f"m{v}" / "model.safetensors").write_text(f"weights {v}")
        registry.register(db, base_model="tiny", runs=[f"r{v}"], path=tmp_path / f"m{v}",
                          sha256=registry.files_sha256(tmp_path / f"m{v}"), reasons=[f"trained by r{v}"])
        registry.set_status(db, v, ModelStatus.CHAMPION, ["better"])
    assert [m["tags"] for m in json.loads(ccd("models", "list", "--json").stdout)] == [[], []]
    with OllamaDouble() as double:
        settings = DeploySettings(ollama_host=double.url)
        a1, a2 = make_artifact(tmp_path, 1), make_artifact(tmp_path, 2)
        deploy(db, settings, a1)
        deploy(db, settings, a2)
        listed = {m["version"]: m["tags"] for m in json.loads(ccd("models", "list", "--json").stdout)}
        assert listed == {1: ["cc-capture:v1"], 2: ["cc-capture:v2", "cc-capture:latest"]}
        table = ccd("models", "list").stdout.splitlines()
        row = {v: next(line for line in table if f"│ v{v} " in line) for v in (1, 2)}
        assert "cc-capture:v2, cc-capture:latest" in row[2] and "latest" not in row[1]
        status = json.loads(ccd("status", "--json").stdout)
        assert set(status["champion"]) == {"version", "behavioural_similarity", "promoted_at"}
        assert status["champion"]["version"] == 2
        assert set(status["deployed"]) == {"tag", "alias", "version", "behavioural_similarity", "deployed_at", "host",
                                           "ollama"}
        assert (status["deployed"]["tag"], status["deployed"]["ollama"]) == ("cc-capture:v2", "reachable")
        rollback(db, settings, 1, "answers got worse", artifacts_of(a1, a2))
        listed = {m["version"]: m["tags"] for m in json.loads(ccd("models", "list", "--json").stdout)}
        assert listed == {1: ["cc-capture:v1", "cc-capture:latest"], 2: ["cc-capture:v2"]}


@pytest.mark.parametrize("content", ["Two checks first.", ""], ids=["text-and-calls", "calls-only"])
def test_ollama_finds_the_tool_calls_the_template_teaches(content, tmp_path):
    """The model writes an assistant turn as the template renders one; Ollama (its own parser, run in
    Go) must find both calls in it, with the text before them as content. Ollama takes its tag from
    the first text inside the template's `if .ToolCalls`: were an action first there, the tag would be
    "{", llama-server would drop <|python_tag|>, and a call after text would come back as text."""
    from cc_capture.export.prompts import SYSTEM, TOOLS
    from support import ollama_go

    calls = [{"function": {"name": "Bash", "arguments": {"command": "ls -la"}}},
             {"function": {"name": "Read", "arguments": {"file_path": "a.py"}}}]
    conversation = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Check it."},
                    {"role": "assistant", "content": content, "tool_calls": calls}]
    rendered = ollama_go.render(conversation, TOOLS, tmp_path)
    turn = rendered.rsplit("<|start_header_id|>assistant<|end_header_id|>\n\n", 1)[1]
    assert turn.endswith(STOP_TOKENS[1])  # <|eom_id|>: llama-server stops there, the parser never sees it
    found = ollama_go.detect(turn[:-len(STOP_TOKENS[1])], TOOLS, ["<|python_tag|>"], tmp_path)
    assert found["tag"] == "<|python_tag|>" and found["preserved"] == ["<|python_tag|>"]
    assert [(c["name"], c["arguments"]) for c in found["calls"]] == [("Bash", {"command": "ls -la"}),
                                                                     ("Read", {"file_path": "a.py"})]
    assert found["content"] == (content + "\n" if content else "")
