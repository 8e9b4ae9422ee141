"""Fault: the data folder's disk is full (a real, small tmpfs). Hooks still exit 0 at once; what
they could not record is visible in `ccd status` and in the quarantine reasons, never silent."""

import json
import os
import subprocess
import sys
import time

from cc_capture import daemon, store
from conftest import EMITTER, wait_for
from support.faults import fill, small_tmpfs


def _ccd(*args):
    return subprocess.run([sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True, timeout=60)


def _hook(home, i):
    payload = json.dumps({"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": f"p{i}",
                          "prompt": "x" * 16000}).encode()
    return subprocess.run(["/bin/sh", str(EMITTER), str(home)], input=payload, capture_output=True, timeout=30)


def test_full_disk_is_visible_in_status_and_quarantine(tmp_path, monkeypatch):
    with small_tmpfs(tmp_path / "data", "4m") as home:
        monkeypatch.setenv("CC_CAPTURE_HOME", str(home))
        from cc_capture.config import Paths

        paths = Paths(home).ensure()
        (home / "config.toml").write_text("[capture]\nincomplete_grace_s = 2\nmirror_transcripts = false\n")
        daemon.start(paths)
        try:
            assert _hook(home, 0).returncode == 0
            wait_for(lambda: _count(paths, "events") == 1, message="first event ingested")
            fill(home)
            lost = [_hook(home, i) for i in range(1, 11)]
            assert all(p.returncode == 0 and p.stdout == b"" for p in lost)  # the hook never fails Claude Code
            status = json.loads(_ccd("status", "--json").stdout)
            assert status["disk"]["full"] and status["disk"]["free_bytes"] < 1 << 20
            assert status["journal_incomplete"] == 10
            text = _ccd("status").stdout
            assert "disk full" in text and "10 records incomplete" in text
            time.sleep(2.5)  # the daemon makes a few passes (one a second) while the disk is full
            os.unlink(home / "filler")  # the user frees space
            assert _hook(home, 11).returncode == 0
            wait_for(lambda: _count(paths, "quarantine") == 10, timeout=60, message="cut-short records quarantined")
            wait_for(lambda: _count(paths, "events") == 2, message="the event after it ingested")
            reasons = _reasons(paths)
        finally:
            daemon.stop(paths)
    assert len(reasons) == 10
    assert all("the disk was full when its hook wrote it" in r and "the event is lost" in r for r in reasons), reasons


def _count(paths, table):
    db = store.connect(paths.db)
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.conn.close()


def _reasons(paths):
    db = store.connect(paths.db)
    try:
        return [r[0] for r in db.execute("SELECT reason FROM quarantine")]
    finally:
        db.conn.close()
