"""Training runs as rows: config, dataset manifest, status, metrics, artifacts (no heavy imports)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any


from cc_capture import store
from cc_capture.paths import Paths, private_dir


class Phase(str, Enum):
    """A training method (cc_capture.train.methods has one module for each)."""

    SFT = "sft"
    DPO = "dpo"
    GRPO = "grpo"

    @classmethod
    def parse(cls, value: str) -> "Phase":
        """The phase named `value`, or a ValueError that lists the phases."""
        try:
            return cls(value)
        except ValueError:
            names = [p.value for p in cls]
            raise ValueError(f"--phase must be {', '.join(names[:-1])} or {names[-1]}, not {value!r}") from None


class RunStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class RunDir:
    """The folder of one run (`runs/<id>/`), as the launcher and the worker both see it."""

    path: Path

    @classmethod
    def of(cls, paths: Paths, run_id: str) -> "RunDir":
        return cls(paths.runs / run_id)

    def ensure(self) -> "RunDir":
        private_dir(self.path)  # runs/ too: 0700 whatever the umask
        return self

    @property
    def log(self) -> Path:
        return self.path / "train.log"

    @property
    def progress(self) -> Path:
        return self.path / "progress.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def merged_sft(self) -> Path:
        """DPO and GRPO runs: the SFT model they start from, merged."""
        return self.path / "merged-sft"

_JSON_FIELDS = ("config", "dataset_manifest", "metrics", "artifacts")


def create(db: store.Database, phase: Phase | str, config: dict, dataset_path: str | None,
           manifest: dict | None, from_run: str | None = None) -> str:
    """A queued run; `from_run`, the SFT run a DPO or GRPO run starts from, goes in its artifacts."""
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    artifacts = json.dumps({"from_run": from_run} if from_run else {})
    with store.transaction(db) as conn:
        conn.execute(
            "INSERT INTO runs (run_id, phase, status, created_at, config, dataset_path, dataset_manifest, artifacts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, Phase(phase).value, RunStatus.QUEUED.value, time.time(), json.dumps(config), dataset_path,
             json.dumps(manifest), artifacts))
    return run_id


def update(db: store.Database, run_id: str, **fields: Any) -> None:
    values = {k: (json.dumps(v) if k in _JSON_FIELDS else v.value if isinstance(v, Enum) else v)
              for k, v in fields.items()}
    with store.transaction(db) as conn:
        conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE run_id = ?",
                     [*values.values(), run_id])


def _row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: (json.loads(row[k]) if k in _JSON_FIELDS and row[k] is not None else row[k]) for k in row}
    for k in ("created_at", "started_at", "ended_at"):
        out[k] = store.iso(row[k])
    return out


def get(db: store.Database, run_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM runs WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\' LIMIT 2",
                         [run_id, store.like_prefix(run_id)]))
    return _row(rows[0]) if len(rows) == 1 else None


def listing(db: store.Database, limit: int = 20) -> list[dict[str, Any]]:
    return [_row(r) for r in db.query("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", [limit])]


def latest_completed(db: store.Database, phase: Phase) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM runs WHERE phase = ? AND status = ? ORDER BY created_at DESC LIMIT 1",
                         [Phase(phase).value, RunStatus.COMPLETED.value]))
    return _row(rows[0]) if rows else None
