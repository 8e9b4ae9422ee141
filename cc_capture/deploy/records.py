"""The `deployments` table: every deploy and rollback attempt, failed ones included. Where an alias
points is the model version of its newest succeeded row; the rows before it are its history."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from cc_capture import store


class Action(str, Enum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"


class Outcome(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Deployment:
    id: int
    action: Action
    model_version: int
    tag: str
    alias: str
    host: str
    digest: str | None
    quantization: str | None
    previous_version: int | None
    status: Outcome
    fault: str | None
    error: str | None
    reason: str | None
    started_at: float
    ended_at: float

    def as_json(self) -> dict[str, Any]:
        """The `--json` shape (times as ISO 8601)."""
        out = asdict(self)
        out |= {"action": self.action.value, "status": self.status.value, "version": out.pop("model_version"),
                "started_at": store.iso(self.started_at), "ended_at": store.iso(self.ended_at)}
        return out


def _deployment(row: dict[str, Any]) -> Deployment:
    return Deployment(**(row | {"action": Action(row["action"]), "status": Outcome(row["status"])}))


def record(db: store.Database, *, action: Action, model_version: int, tag: str, alias: str, host: str,
           status: Outcome, started_at: float, digest: str | None = None, quantization: str | None = None,
           previous_version: int | None = None, fault: str | None = None, error: str | None = None,
           reason: str | None = None) -> Deployment:
    with store.transaction(db) as conn:
        cur = conn.execute(
            "INSERT INTO deployments (action, model_version, tag, alias, host, digest, quantization, "
            "previous_version, status, fault, error, reason, started_at, ended_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (action.value, model_version, tag, alias, host, digest, quantization, previous_version, status.value,
             fault, error, reason, started_at, time.time()))
    return get(db, cur.lastrowid)


def get(db: store.Database, deployment_id: int) -> Deployment:
    return _deployment(next(db.query("SELECT * FROM deployments WHERE id = ?", [deployment_id])))


def history(db: store.Database, alias: str, status: Outcome | None = Outcome.SUCCEEDED) -> list[Deployment]:
    """An alias's attempts, oldest first (only the succeeded ones unless `status` is None)."""
    where, params = "alias = ?", [alias]
    if status is not None:
        where, params = where + " AND status = ?", params + [status.value]
    return [_deployment(r) for r in db.query(f"SELECT * FROM deployments WHERE {where} ORDER BY id", params)]


def current(db: store.Database, alias: str) -> Deployment | None:
    """The succeeded attempt the alias points at now."""
    done = history(db, alias)
    return done[-1] if done else None


def rolled_back(db: store.Database, alias: str) -> set[int]:
    """Versions a rollback moved the alias away from: never deployed again automatically."""
    return {d.previous_version for d in history(db, alias)
            if d.action is Action.ROLLBACK and d.previous_version is not None}


def previous_champion(db: store.Database, alias: str) -> int | None:
    """The version the alias pointed at before the current one, skipping versions rolled back from."""
    now = current(db, alias)
    if now is None:
        return None
    skip = rolled_back(db, alias) | {now.model_version}
    for d in reversed(history(db, alias)):
        if d.model_version not in skip:
            return d.model_version
    return None


def tags(db: store.Database, alias: str) -> dict[int, list[str]]:
    """Version → the Ollama names cc-capture gave it: its version tag once deployed, and the alias for
    the version it points at (as recorded here; `keep_versions` may have pruned old version tags since)."""
    out: dict[int, list[str]] = {}
    for d in history(db, alias):
        names = out.setdefault(d.model_version, [])
        if d.tag not in names:
            names.append(d.tag)
    now = current(db, alias)
    if now is not None:
        out[now.model_version].append(alias)
    return out
