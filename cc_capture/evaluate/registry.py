"""The model registry (tables `models`, `model_events`, `evaluations`): every candidate model with
a version number, the runs it came from, its base model, its dataset, its weights' sha256, its
scores per eval set, and its status with the reasons and figures for each change. No heavy imports.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cc_capture import store
from cc_capture.evaluate.champion import ModelStatus
from cc_capture.evaluate.metrics import COMPOSITE
from cc_capture.evaluate.scoring import ItemScore, Summary


@dataclass(frozen=True)
class Model:
    version: int
    status: ModelStatus
    base_model: str
    runs: list[str]
    dataset_path: str | None
    dataset_sha256: str | None
    path: str
    sha256: str
    artifacts: dict[str, Any]
    created_at: float
    status_at: float

    @property
    def is_base(self) -> bool:
        return not self.runs


@dataclass(frozen=True)
class Evaluation:
    model_sha256: str
    eval_set_hash: str
    created_at: float
    items: int
    traces: int
    summary: Summary
    item_scores: list[ItemScore]
    timings: dict[str, float]


def files_sha256(folder: Path) -> str:
    """One hash over a model folder's files (names and contents), in a fixed order."""
    digest = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(folder)).encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _model(row: dict[str, Any]) -> Model:
    return Model(row["version"], ModelStatus(row["status"]), row["base_model"], json.loads(row["runs"]),
                 row["dataset_path"], row["dataset_sha256"], row["path"], row["sha256"], json.loads(row["artifacts"]),
                 row["created_at"], row["status_at"])


def _one(db: store.Database, where: str, params: list) -> Model | None:
    rows = list(db.query(f"SELECT * FROM models WHERE {where} ORDER BY version DESC LIMIT 1", params))
    return _model(rows[0]) if rows else None


def get(db: store.Database, version: int) -> Model | None:
    return _one(db, "version = ?", [version])


def by_sha256(db: store.Database, sha256: str) -> Model | None:
    return _one(db, "sha256 = ?", [sha256])


def by_run(db: store.Database, run_id: str) -> Model | None:
    """The model whose last run is this one."""
    return _one(db, "json_extract(runs, '$[#-1]') = ?", [run_id])


def champion(db: store.Database) -> Model | None:
    return _one(db, "status = ?", [ModelStatus.CHAMPION.value])


def listing(db: store.Database) -> list[Model]:
    return [_model(r) for r in db.query("SELECT * FROM models ORDER BY version")]


def _event(conn, version: int, status: ModelStatus, reasons: list[str], figures: dict | None, at: float) -> None:
    conn.execute("INSERT INTO model_events (version, at, status, reasons, figures) VALUES (?, ?, ?, ?, ?)",
                 (version, at, status.value, json.dumps(reasons), json.dumps(figures) if figures else None))


def register(db: store.Database, *, base_model: str, runs: list[str], path: Path, sha256: str,
             dataset_path: str | None = None, dataset_sha256: str | None = None,
             artifacts: dict[str, Any] | None = None, reasons: list[str]) -> Model:
    """A new candidate (or the model already registered with these weights)."""
    existing = by_sha256(db, sha256)
    if existing:
        return existing
    now = time.time()
    with store.transaction(db) as conn:
        cur = conn.execute(
            "INSERT INTO models (status, base_model, runs, dataset_path, dataset_sha256, path, sha256, artifacts, "
            "created_at, status_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ModelStatus.CANDIDATE.value, base_model, json.dumps(runs), dataset_path, dataset_sha256, str(path),
             sha256, json.dumps(artifacts or {}), now, now))
        _event(conn, cur.lastrowid, ModelStatus.CANDIDATE, reasons, None, now)
    return get(db, cur.lastrowid)


def add_artifacts(db: store.Database, version: int, artifacts: dict[str, Any]) -> None:
    """Merge files made from a model (its exported GGUFs, with sha256 and checks) into its artifacts."""
    with store.transaction(db) as conn:
        row = conn.execute("SELECT artifacts FROM models WHERE version = ?", (version,)).fetchone()
        conn.execute("UPDATE models SET artifacts = ? WHERE version = ?",
                     (json.dumps(json.loads(row[0]) | artifacts), version))


def set_status(db: store.Database, version: int, status: ModelStatus, reasons: list[str],
               figures: dict | None = None) -> None:
    """Change a model's status, or (same status) record a decision about it; a new champion retires
    the old one in the same transaction."""
    now = time.time()
    with store.transaction(db) as conn:
        if status is ModelStatus.CHAMPION:
            for (old,) in conn.execute("SELECT version FROM models WHERE status = ? AND version != ?",
                                       (ModelStatus.CHAMPION.value, version)).fetchall():
                conn.execute("UPDATE models SET status = ?, status_at = ? WHERE version = ?",
                             (ModelStatus.RETIRED.value, now, old))
                _event(conn, old, ModelStatus.RETIRED, [f"replaced by v{version}"], None, now)
        conn.execute("UPDATE models SET status = ?, status_at = ? WHERE version = ?", (status.value, now, version))
        _event(conn, version, status, reasons, figures, now)


def events(db: store.Database, version: int) -> list[dict[str, Any]]:
    return [{"at": store.iso(r["at"]), "status": r["status"], "reasons": json.loads(r["reasons"]),
             "figures": json.loads(r["figures"]) if r["figures"] else None}
            for r in db.query("SELECT * FROM model_events WHERE version = ? ORDER BY id", [version])]


# ---------------------------------------------------------------- evaluations (the score cache)


def cached(db: store.Database, model_sha256: str, eval_set_hash: str) -> Evaluation | None:
    rows = list(db.query("SELECT * FROM evaluations WHERE model_sha256 = ? AND eval_set_hash = ?",
                         [model_sha256, eval_set_hash]))
    if not rows:
        return None
    r = rows[0]
    summary = Summary(json.loads(r["metrics"]), json.loads(r["counts"]), json.loads(r["intervals"]),
                      json.loads(r["per_tool"]))
    return Evaluation(r["model_sha256"], r["eval_set_hash"], r["created_at"], r["items"], r["traces"], summary,
                      [ItemScore(**s) for s in json.loads(r["item_scores"])], json.loads(r["timings"]))


def save(db: store.Database, evaluation: Evaluation) -> None:
    s = evaluation.summary
    with store.transaction(db) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO evaluations (model_sha256, eval_set_hash, created_at, items, traces, metrics, "
            "counts, intervals, per_tool, item_scores, timings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (evaluation.model_sha256, evaluation.eval_set_hash, evaluation.created_at, evaluation.items,
             evaluation.traces, json.dumps(s.metrics), json.dumps(s.counts), json.dumps(s.intervals),
             json.dumps(s.per_tool), json.dumps([asdict(i) for i in evaluation.item_scores]),
             json.dumps(evaluation.timings)))


def scores_over_time(db: store.Database, sha256: str) -> list[dict[str, Any]]:
    """A model's behavioural similarity on each eval set it was scored on, oldest first."""
    return [{"eval_set_hash": r["eval_set_hash"], "at": store.iso(r["created_at"]),
             COMPOSITE: json.loads(r["metrics"]).get(COMPOSITE), "items": r["items"]}
            for r in db.query("SELECT eval_set_hash, created_at, metrics, items FROM evaluations "
                              "WHERE model_sha256 = ? ORDER BY created_at", [sha256])]


def as_json(db: store.Database, model: Model, detail: bool = False) -> dict[str, Any]:
    """The `ccd models list|show --json` shape."""
    history = events(db, model.version)
    scores = scores_over_time(db, model.sha256)
    out = {"version": model.version, "status": model.status.value, "base_model": model.base_model,
           "runs": model.runs, COMPOSITE: scores[-1][COMPOSITE] if scores else None,
           "created_at": store.iso(model.created_at), "reasons": history[-1]["reasons"] if history else []}
    if detail:
        out |= {"sha256": model.sha256, "path": model.path, "dataset_path": model.dataset_path,
                "dataset_sha256": model.dataset_sha256, "artifacts": model.artifacts, "scores": scores,
                "events": history}
    return out
