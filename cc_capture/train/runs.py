"""Training runs as rows: created and updated here, read through `cc_capture.reads` as `records.Run`;
their folders (`RunDir`). No heavy imports."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any


from cc_capture import records, store
from cc_capture.paths import Paths, private_dir
from cc_capture.records import DatasetManifest, Phase, RunStatus

__all__ = ["Phase", "RunStatus", "RunDir", "create", "update"]  # runs are read through cc_capture.reads


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

    def complete_checkpoints(self) -> list[Path]:
        """The checkpoints written whole, oldest first. The Trainer writes trainer_state.json last,
        and an interruption (Ctrl-C, kill -9) can cut even that file short: only one that parses counts."""
        complete = []
        for c in self.checkpoints.glob("checkpoint-*"):
            try:
                json.loads((c / "trainer_state.json").read_text())
            except (OSError, ValueError):
                continue
            complete.append(c)
        return sorted(complete, key=lambda c: int(c.name.split("-")[1]))

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def merged_sft(self) -> Path:
        """DPO and GRPO runs: the SFT model they start from, merged."""
        return self.path / "merged-sft"

_JSON_FIELDS = ("config", "metrics", "artifacts")


def create(db: store.Database, phase: Phase | str, config: dict, dataset_path: str | None,
           manifest: DatasetManifest | None, from_run: str | None = None) -> str:
    """A queued run; `from_run`, the SFT run a DPO or GRPO run starts from, goes in its artifacts."""
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    artifacts = json.dumps({"from_run": from_run} if from_run else {})
    with store.transaction(db) as conn:
        conn.execute(
            "INSERT INTO runs (run_id, phase, status, created_at, config, dataset_path, dataset_manifest, artifacts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, Phase(phase).value, RunStatus.QUEUED.value, time.time(), json.dumps(config), dataset_path,
             records.encode(manifest).decode(), artifacts))
    return run_id


def update(db: store.Database, run_id: str, **fields: Any) -> None:
    values = {k: (json.dumps(v) if k in _JSON_FIELDS else v.value if isinstance(v, Enum) else v)
              for k, v in fields.items()}
    with store.transaction(db) as conn:
        conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE run_id = ?",
                     [*values.values(), run_id])
