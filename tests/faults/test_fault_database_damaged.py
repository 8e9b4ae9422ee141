"""Fault: 8 KB of garbage in the middle of the database. Noticed at daemon start, never a green
status or a traceback; the advice given (move it aside, `ccd import`) really rebuilds the traces."""

import os
import shutil
import subprocess
import sys

from cc_capture import daemon, store
from cc_capture.health import database_integrity


def _ccd(*args):
    return subprocess.run([sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True, timeout=300)


def _traces(paths):
    db = store.connect(paths.db)
    try:
        return db.execute("SELECT count(*) FROM traces").fetchone()[0]
    finally:
        db.conn.close()


def test_damaged_database_is_reported_with_a_recovery_that_works(paths, shared, tmp_path):
    projects = tmp_path / "projects"
    shutil.copytree(shared / "transcripts", projects)
    assert _ccd("import", str(projects), "--json").returncode == 0
    imported = _traces(paths)
    assert imported > 0
    db = store.connect(paths.db)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    size = paths.db.stat().st_size
    with open(paths.db, "r+b") as fh:  # 8 KB of garbage in the middle
        fh.seek(size // 2)
        fh.write(os.urandom(8192))
    health = database_integrity(paths.db)
    assert not health.ok and health.problems and "ccd import" in health.advice

    start = _ccd("daemon", "start")
    assert start.returncode == 1 and "daemon running" not in start.stdout
    assert "is damaged" in start.stderr and "ccd import" in start.stderr and "Traceback" not in start.stderr
    status = _ccd("status")
    assert "damaged" in status.stdout + status.stderr and "Traceback" not in status.stderr
    for args in (("traces", "list"), ("search", "the"), ("stats",)):
        p = _ccd(*args)
        assert "Traceback" not in p.stderr, (args, p.stderr)

    # the advice, followed to the letter
    os.rename(paths.db, str(paths.db) + ".damaged")
    try:
        assert _ccd("daemon", "start").returncode == 0
        assert _ccd("import", str(projects), "--json").returncode == 0
        assert _traces(paths) == imported
    finally:
        daemon.stop(paths)
