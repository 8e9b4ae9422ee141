"""What `ccd status` reports, gathered without importing anything heavy."""

from __future__ import annotations

from typing import Any

from cc_capture import journal, store
from cc_capture.config import ConfigError, Paths, load_settings
from cc_capture.daemon import DaemonInfo, info
from cc_capture.health import disk_space
from cc_capture.schedule.state import learning_status


def hook_errors(paths: Paths, last: int = 5) -> dict[str, Any]:
    """Failures the hook emitter recorded (it cannot report them any other way)."""
    try:
        lines = paths.hook_errors.read_text(errors="replace").splitlines()
        at = paths.hook_errors.stat().st_mtime
    except FileNotFoundError:
        return {"count": 0, "last_at": None, "recent": []}
    recent = [line.split("\t", 1)[-1] for line in lines[-last:]]
    return {"count": len(lines), "last_at": store.iso(at), "recent": recent}


def daemon_dict(d: DaemonInfo) -> dict[str, Any]:
    """The daemon's state as `ccd status --json` and `ccd daemon status --json` report it."""
    return {"running": d.running, "pid": d.pid, "uptime_s": d.uptime_s, "ready": d.ready, "warnings": d.warnings,
            "error": d.error}


def collect(paths: Paths) -> dict[str, Any]:
    daemon = info(paths)
    try:
        learning_settings = load_settings(paths).learning
    except ConfigError:
        learning_settings = None  # `ccd status` still answers; the commands that need settings say what is wrong
    db = store.connect(paths.db)
    try:
        learning = learning_status(db, learning_settings, daemon.running) if learning_settings else None
        counts = store.counts(db)
        by_status = store.trace_status_counts(db)
        qualifying = store.qualifying_counts(db)
        last_run = store.last_run(db)
        last = store.last_event_at(db)
    finally:
        db.conn.close()
    disk = disk_space(paths.journal)
    db_bytes = sum(p.stat().st_size for p in paths.home.glob(paths.db.name + "*") if p.is_file())
    return {
        "daemon": daemon_dict(daemon),
        "counts": counts,
        "traces_by_status": by_status,
        "qualifying": qualifying,
        "journal_backlog_bytes": journal.backlog_bytes(paths.journal),
        "journal_incomplete": journal.incomplete_count(paths.journal),
        "disk": disk.as_dict() if disk else None,
        "db_path": str(paths.db),
        "db_bytes": db_bytes,
        "last_event_at": store.iso(last),
        "hook_errors": hook_errors(paths),
        "last_run": last_run,
        "learning": learning,
    }
