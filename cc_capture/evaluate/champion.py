"""The champion as `ccd status` reports it, read with the store alone (no settings, no pydantic:
`ccd status` stays fast). The registry (registry.py) owns the tables and their meaning."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from cc_capture import store


class ModelStatus(str, Enum):
    CANDIDATE = "candidate"
    CHAMPION = "champion"
    REJECTED = "rejected"
    RETIRED = "retired"


def summary(db: store.Database) -> dict[str, Any] | None:
    """{version, behavioural_similarity (on its latest eval set), promoted_at}, or None."""
    row = db.execute(
        "SELECT m.version, (SELECT e.metrics FROM evaluations e WHERE e.model_sha256 = m.sha256 "
        "ORDER BY e.created_at DESC LIMIT 1), (SELECT max(at) FROM model_events v WHERE v.version = m.version "
        "AND v.status = ?) FROM models m WHERE m.status = ? ORDER BY m.version DESC LIMIT 1",
        (ModelStatus.CHAMPION.value, ModelStatus.CHAMPION.value)).fetchone()
    if row is None:
        return None
    metrics = json.loads(row[1]) if row[1] else {}
    return {"version": row[0], "behavioural_similarity": metrics.get("behavioural_similarity"),
            "promoted_at": store.iso(row[2])}
