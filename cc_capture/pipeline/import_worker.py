"""What the worker processes of a parallel import (`pipeline.transcripts`) start with, and what they
run besides parsing: the signals of traces the import committed, read on their own connection.

Light to import on purpose: a worker is spawned fresh and the writer waits for the first chunks
it parses, so the signals stack (settings, the phrase patterns, the store) loads only when the
worker is first handed signals (about 0.4 s of CPU otherwise spent before any parsing).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cc_capture import redact

if TYPE_CHECKING:
    from cc_capture.config import GateSettings
    from cc_capture.signals.runner import Derived
    from cc_capture.store import Database

_db_path: Path | None = None
_gates: dict[str, Any] | None = None  # GateSettings.model_dump() of the importing process
_signals: tuple[Database, GateSettings] | None = None  # opened when signals are first asked for


def start(db_path: str, gates: dict[str, Any], *email_rules: Any) -> None:
    """The worker's initializer: the importing process's e-mail policy (`bulk.worker_pool`), and
    where to read committed traces from."""
    global _db_path, _gates
    redact.configure(*email_rules)
    _db_path, _gates = Path(db_path), gates


def derive(trace_ids: list[str]) -> list[Derived]:
    """`signals.runner.derive` of these committed traces, on this worker's own connection."""
    global _signals
    from cc_capture import store
    from cc_capture.config import GateSettings
    from cc_capture.signals import runner

    if _db_path is None or _gates is None:
        raise RuntimeError("import_worker.start() must run first (it is the pool's initializer)")
    if _signals is None:
        _signals = store.connect(_db_path, migrate=False), GateSettings(**_gates)
    db, gates = _signals
    return runner.derive(db, trace_ids, gates)
