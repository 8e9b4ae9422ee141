"""Fault: the database file deleted while the daemon (or another process) has it open."""

import json
import os
import subprocess
import sys

import pytest

from cc_capture import daemon, store
from conftest import emit, wait_for


def _events(paths):
    db = store.connect(paths.db)
    try:
        return db.execute("SELECT count(*), count(DISTINCT prompt_id) FROM events").fetchone()
    finally:
        db.conn.close()


def _prompt(i):
    return {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": f"p{i}", "prompt": f"n={i}"}


def _ccd(*args):
    return subprocess.run([sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("deleted", [["cc-capture.db"], ["cc-capture.db", "cc-capture.db-wal", "cc-capture.db-shm"]])
def test_database_deleted_under_the_daemon_loses_nothing(paths, deleted):
    daemon.start(paths)
    try:
        for i in range(20):
            emit(paths, _prompt(i))
        wait_for(lambda: not list(paths.journal.glob("*.ev")) and _events(paths) == (20, 20), message="20 ingested")
        for name in deleted:
            os.unlink(paths.home / name)
        for i in range(20, 50):
            emit(paths, _prompt(i))
        wait_for(lambda: paths.db.exists() and not list(paths.journal.glob("*.ev")), message="journal drained")
        wait_for(lambda: _ccd("status", "--json").returncode == 0, message="status readable")
        status = json.loads(_ccd("status", "--json").stdout)
        assert any("was deleted while the daemon ran" in w for w in status["daemon"]["warnings"]), status["daemon"]
        wait_for(lambda: _events(paths) == (50, 50), message="every event in the database now there")
    finally:
        daemon.stop(paths)
    daemon.start(paths)  # and it is all still there after a restart
    try:
        assert _events(paths) == (50, 50)
    finally:
        daemon.stop(paths)


HOLDER = """
import sys, time
from pathlib import Path
from cc_capture import store
db = store.connect(Path(sys.argv[1]))
db.execute("INSERT INTO sessions (session_id) VALUES ('held')")  # committed into the WAL, not checkpointed
print("ready", flush=True)
sys.stdin.readline()  # until the test has run the CLI
print(db.execute("SELECT count(*) FROM sessions WHERE session_id = 'held'").fetchone()[0], flush=True)
"""


def test_cli_never_deletes_another_processs_wal(paths):
    """Another process writes into a database whose file was deleted: `ccd` must neither create a
    new database beside that process's write-ahead log nor remove it, and must say what happened."""
    store.connect(paths.db).conn.close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(paths.db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        wal = os.stat(str(paths.db) + "-wal")
        assert wal.st_size > 0
        os.unlink(paths.db)
        for args in (("status",), ("status", "--json"), ("traces", "list")):
            p = _ccd(*args)
            assert p.returncode == 1, (args, p.stdout, p.stderr)
            assert "Traceback" not in p.stderr and "was deleted while the daemon was writing into it" in p.stderr
        after = os.stat(str(paths.db) + "-wal")
        assert (after.st_ino, after.st_size) == (wal.st_ino, wal.st_size)
        assert not paths.db.exists()
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "1"
    finally:
        holder.kill()
        holder.wait()
