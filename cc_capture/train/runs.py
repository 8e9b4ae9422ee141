"""Training runs as rows: config, dataset manifest, status, metrics, artifacts (no heavy imports)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


from cc_capture import store

_JSON_FIELDS = ("config", "dataset_manifest", "metrics", "artifacts")


def create(db: store.Database, phase: str, config: dict, dataset_path: str | None,
           manifest: dict | None) -> str:
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    with store.transaction(db) as conn:
        conn.execute(
            "INSERT INTO runs (run_id, phase, status, created_at, config, dataset_path, dataset_manifest) "
            "VALUES (?, ?, 'queued', ?, ?, ?, ?)",
            (run_id, phase, time.time(), json.dumps(config), dataset_path, json.dumps(manifest)))
    return run_id


def update(db: store.Database, run_id: str, **fields: Any) -> None:
    values = {k: (json.dumps(v) if k in _JSON_FIELDS else v) for k, v in fields.items()}
    with store.transaction(db) as conn:
        conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE run_id = ?",
                     [*values.values(), run_id])


def _row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: (json.loads(row[k]) if k in _JSON_FIELDS and row[k] is not None else row[k]) for k in row}
    for k in ("created_at", "started_at", "ended_at"):
        out[k] = store.iso(row[k])
    return out


def get(db: store.Database, run_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM runs WHERE run_id = ? OR run_id LIKE ? || '%' LIMIT 2", [run_id, run_id]))
    return _row(rows[0]) if len(rows) == 1 else None


def listing(db: store.Database, limit: int = 20) -> list[dict[str, Any]]:
    return [_row(r) for r in db.query("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", [limit])]


def latest_completed(db: store.Database, phase: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM runs WHERE phase = ? AND status = 'completed' ORDER BY created_at DESC "
                         "LIMIT 1", [phase]))
    return _row(rows[0]) if rows else None
