"""Deploy and rollback in Ollama: immutable version tags (`NAME:vN`) plus one moving alias
(`NAME:latest`), so that deploying and rolling back are each one `/api/copy`.

A deploy uploads the GGUF (skipped when Ollama has the digest), creates `NAME:vN` with the file,
cc-capture's Go template, stop tokens and `num_ctx`, checks that `/api/show` lists the `tools`
capability (Claude Code always sends tools; Ollama refuses a model without it), and only then points
the alias at it. Any failure leaves the alias where it was, removes a half-made tag, and is recorded
with its cause. Old version tags are pruned to `keep_versions` (never the alias's target or the
previous champion). Which model may be deployed (the gate) is the caller's decision.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cc_capture import store
from cc_capture.config import DeploySettings
from cc_capture.datasets.templates import OLLAMA_TEMPLATE
from cc_capture.deploy import records
from cc_capture.deploy.records import Action, Deployment, Outcome
from cc_capture.deploy.server import DeployError, Fault, OllamaServer

# The end tokens of cc-capture's chat template: a turn ends with <|eot_id|>, tool calls with <|eom_id|>.
STOP_TOKENS = ["<|eot_id|>", "<|eom_id|>"]
REQUIRED_CAPABILITY = "tools"


@dataclass(frozen=True)
class Artifact:
    """An exported GGUF of one registry version."""

    version: int
    path: Path
    sha256: str
    quantization: str


@dataclass
class Result:
    """What a deploy or rollback did (the `--json` of `ccd deploy` and `ccd rollback`)."""

    deployment: Deployment
    ollama_version: str
    uploaded: bool = False
    pruned: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        d = self.deployment
        return {"action": d.action.value, "version": d.model_version, "tag": d.tag, "alias": d.alias,
                "host": d.host, "digest": d.digest, "quantization": d.quantization,
                "previous_version": d.previous_version, "reason": d.reason, "at": d.as_json()["ended_at"],
                "ollama_version": self.ollama_version, "uploaded": self.uploaded, "pruned": self.pruned}


def parameters(settings: DeploySettings) -> dict[str, Any]:
    return {"num_ctx": settings.num_ctx, "stop": list(STOP_TOKENS)}


def _create_version(server: OllamaServer, settings: DeploySettings, artifact: Artifact,
                    on_status: Callable[[str], None] | None) -> tuple[str, bool]:
    """Upload and create NAME:vN, check its tools capability; (digest, whether the file was uploaded).
    A half-made tag is removed before the error goes up."""
    tag = settings.tag(artifact.version)
    if not artifact.path.is_file():
        raise DeployError(Fault.NOT_EXPORTED, f"the exported file {artifact.path} of v{artifact.version} is gone",
                          f"Export it again: `ccd export {artifact.version}`")
    digest = f"sha256:{artifact.sha256}"
    uploaded = not server.has_blob(digest)
    if uploaded:
        if on_status:
            on_status(f"uploading {artifact.path.name}")
        server.push_blob(artifact.path, artifact.sha256)
    try:
        server.create(tag, {artifact.path.name: digest}, OLLAMA_TEMPLATE.read_text(), parameters(settings),
                      on_status)
        capabilities = server.capabilities(tag)
        if REQUIRED_CAPABILITY not in capabilities:
            raise DeployError(Fault.NO_TOOLS, f"Ollama lists {tag}'s capabilities as {capabilities}, without "
                              f"'{REQUIRED_CAPABILITY}': Claude Code's requests would be refused",
                              "The Go template must reference .Tools (cc_capture/datasets/templates/ollama.gotmpl);"
                              " check that this Ollama version reads templates given to /api/create")
    except DeployError as e:
        if e.fault not in (Fault.NOT_RUNNING, Fault.UNREACHABLE):
            server.delete(tag)
        raise
    return digest, uploaded


def _versions_on_server(server: OllamaServer, settings: DeploySettings) -> dict[int, str]:
    pattern = re.compile(re.escape(settings.model_name) + r":v(\d+)$")
    return {int(m.group(1)): name for name in server.tags() if (m := pattern.match(name))}


def prune(db: store.Database, server: OllamaServer, settings: DeploySettings) -> list[str]:
    """Delete version tags beyond the newest `keep_versions`, never the alias's target or the previous
    champion. Ollama frees only blobs no other model uses."""
    present = _versions_on_server(server, settings)
    keep = set(sorted(present)[-settings.keep_versions:])
    now = records.current(db, settings.alias)
    keep |= {v for v in (now and now.model_version, records.previous_champion(db, settings.alias)) if v}
    removed = []
    for version in sorted(set(present) - keep):
        if server.delete(present[version]):
            removed.append(present[version])
    return removed


def _attempt(db: store.Database, settings: DeploySettings, action: Action, version: int,
             quantization: str | None, reason: str | None,
             work: Callable[[OllamaServer], tuple[str | None, bool]]) -> Result:
    """Run one deploy or rollback against the server; record it, succeeded or failed."""
    started = time.time()
    host = settings.host()
    now = records.current(db, settings.alias)
    common = dict(action=action, model_version=version, tag=settings.tag(version), alias=settings.alias, host=host,
                  quantization=quantization, previous_version=now.model_version if now else None, reason=reason,
                  started_at=started)
    with OllamaServer(host, settings.timeout_s) as server:
        try:
            ollama_version = server.check_version()
            digest, uploaded = work(server)
            server.copy(settings.tag(version), settings.alias)
        except DeployError as e:
            records.record(db, status=Outcome.FAILED, fault=e.fault.value, error=str(e), **common)
            raise
        deployment = records.record(db, status=Outcome.SUCCEEDED, digest=digest, **common)
        try:
            pruned = prune(db, server, settings)
        except DeployError:
            pruned = []  # the deploy stands; the next one prunes again
    return Result(deployment, ollama_version, uploaded, pruned)


def deploy(db: store.Database, settings: DeploySettings, artifact: Artifact,
           on_status: Callable[[str], None] | None = None) -> Result:
    """Create NAME:vN from the artifact and point the alias at it (the caller checked the gate)."""

    def work(server: OllamaServer) -> tuple[str, bool]:
        return _create_version(server, settings, artifact, on_status)

    return _attempt(db, settings, Action.DEPLOY, artifact.version, artifact.quantization, None, work)


def rollback_target(db: store.Database, settings: DeploySettings, version: int | None) -> tuple[int, int]:
    """(the version the alias points at now, the one to roll back to), or NOTHING_TO_ROLL_BACK."""
    now = records.current(db, settings.alias)
    if now is None:
        raise DeployError(Fault.NOTHING_TO_ROLL_BACK, f"{settings.alias} was never deployed",
                          "Deploy a model first: `ccd deploy`")
    target = version if version is not None else records.previous_champion(db, settings.alias)
    if target is None:
        raise DeployError(Fault.NOTHING_TO_ROLL_BACK, f"{settings.alias} points at v{now.model_version} and no "
                          "earlier deployed version is left to roll back to",
                          "Name a version: `ccd rollback VERSION` (`ccd models list` shows them)")
    if target == now.model_version:
        raise DeployError(Fault.NOTHING_TO_ROLL_BACK, f"{settings.alias} already points at v{target}",
                          "Name another version: `ccd rollback VERSION`")
    return now.model_version, target


def rollback(db: store.Database, settings: DeploySettings, target: int, reason: str,
             artifact_of: Callable[[int], Artifact | None],
             on_status: Callable[[str], None] | None = None) -> Result:
    """Point the alias back at NAME:v<target>, creating that tag again from its artifact if it was pruned."""

    def work(server: OllamaServer) -> tuple[str | None, bool]:
        if target in _versions_on_server(server, settings):
            return (f"sha256:{known.sha256}" if known else None), False
        artifact = known
        if artifact is None:
            raise DeployError(Fault.NOT_EXPORTED, f"{settings.tag(target)} is not in Ollama and v{target} has no "
                              "exported file to create it from", f"Export it first: `ccd export {target}`")
        return _create_version(server, settings, artifact, on_status)

    known = artifact_of(target)
    return _attempt(db, settings, Action.ROLLBACK, target, known.quantization if known else None, reason, work)
