"""What `ccd status` reports, gathered without importing anything heavy."""

from __future__ import annotations

from typing import Any

from cc_capture import hooks_install, journal, store
from cc_capture.evaluate.champion import summary as champion_summary
from cc_capture.health import disk_space
from cc_capture.homelock import DaemonInfo, info
from cc_capture.paths import Paths
from cc_capture.learning_state import learning_status


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
    db = store.connect(paths.db)
    try:
        counts = store.counts(db)
        by_status = store.trace_status_counts(db)
        qualifying = store.qualifying_counts(db)
        last_run = store.last_run(db)
        last = store.last_event_at(db)
        champion = champion_summary(db)
        deployed = _deployed(db, paths)
        learning = learning_status(db, paths, daemon.running)
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
        "hooks": hooks_install.registration().as_dict(),
        "last_run": last_run,
        "champion": champion,
        "deployed": deployed,
        "learning": learning,
    }


def _deployed(db: store.Database, paths: Paths) -> dict[str, Any] | None:
    """What the deploy alias points at. Only a store that holds deployments loads the settings
    (pydantic) and the deploy modules: `ccd status` stays fast for everyone else."""
    if not db.execute("SELECT EXISTS (SELECT 1 FROM deployments)").fetchone()[0]:
        return None
    from cc_capture.config import ConfigError, load_settings
    from cc_capture.deploy import status as deploy_status
    from cc_capture.config import DeploySettings

    try:
        settings = load_settings(paths).deploy  # its defaults when the settings file is invalid: status still reports
    except ConfigError:
        settings = DeploySettings()
    return deploy_status.deployed(db, settings)
