"""What `ccd status` says about the deployed model: the alias's target from the deployments table,
and whether Ollama answers for it right now (one short request, only when something is deployed)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from cc_capture import store
from cc_capture.config import DeploySettings
from cc_capture.deploy import records

PROBE_TIMEOUT_S = 2.0


class OllamaState(str, Enum):
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"
    MISSING_MODEL = "missing_model"


def probe(host: str, model: str, timeout_s: float = PROBE_TIMEOUT_S) -> OllamaState:
    from cc_capture.deploy.server import DeployError, Fault, OllamaServer

    try:
        with OllamaServer(host, timeout_s) as server:
            server.capabilities(model)
    except DeployError as e:
        return OllamaState.MISSING_MODEL if e.fault is Fault.MODEL_MISSING else OllamaState.UNREACHABLE
    return OllamaState.REACHABLE


def behavioural_similarity(db: store.Database, version: int, digest: str | None = None) -> float | None:
    """The deployed file's figure (its GGUF, scored in llama.cpp) on the latest eval set it was scored
    on; the version's HF figure where the file has none (a deploy made before GGUFs were evaluated)."""
    row = db.execute("SELECT metrics FROM evaluations WHERE model_sha256 = ? ORDER BY created_at DESC LIMIT 1",
                     ((digest or "").removeprefix("sha256:"),)).fetchone() if digest else None
    row = row or db.execute("SELECT e.metrics FROM evaluations e JOIN models m ON e.model_sha256 = m.sha256 "
                            "WHERE m.version = ? ORDER BY e.created_at DESC LIMIT 1", (version,)).fetchone()
    return json.loads(row[0]).get("behavioural_similarity") if row else None


def deployed(db: store.Database, settings: DeploySettings) -> dict[str, Any] | None:
    """{tag, alias, version, behavioural_similarity, deployed_at, host, ollama} of what the alias
    points at, or None."""
    now = records.current(db, settings.alias)
    if now is None:
        return None
    return {"tag": now.tag, "alias": now.alias, "version": now.model_version,
            "behavioural_similarity": behavioural_similarity(db, now.model_version, now.digest),
            "deployed_at": store.iso(now.ended_at), "host": now.host, "ollama": probe(now.host, now.alias).value}
