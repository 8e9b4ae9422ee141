"""Fault: the daemon cannot start as usual. `ccd daemon start` waits for the child's "ready" and
reports its reason; an inotify refusal (IDEs commonly exhaust the instance limit) degrades to
polling with a warning, never to a dead daemon behind a "daemon running"."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from cc_capture import daemon, store
from conftest import emit, wait_for


def _ccd(*args, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True,
                          timeout=120)


def _events(paths):
    db = store.connect(paths.db)
    try:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        db.conn.close()


def _no_inotify():
    """A user namespace whose inotify instance limit is 0: inotify_init fails there as when an IDE
    took every instance (the limit is per user namespace, so nothing outside the test is touched)."""
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) not installed")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                            "echo 0 > /proc/sys/user/max_inotify_instances"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a user namespace with its own inotify limit here: {probe.stderr.strip()}")
    return ("unshare", "--user", "--map-root-user", "sh", "-c",
            'echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"', "sh")


def test_inotify_refused_degrades_to_polling_with_a_warning(paths):
    p = _ccd("daemon", "start", prefix=_no_inotify())
    try:
        assert p.returncode == 0, p.stderr
        assert "daemon running" in p.stdout and "file watching unavailable" in p.stdout
        for i in range(5):
            emit(paths, {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": f"p{i}",
                         "prompt": "x"})
        wait_for(lambda: _events(paths) == 5, message="events ingested by polling")
        status = json.loads(_ccd("status", "--json").stdout)
        assert status["daemon"]["running"] and status["daemon"]["ready"]
        assert any("polling the journal" in w for w in status["daemon"]["warnings"])
    finally:
        daemon.stop(paths)


def test_damaged_database_start_fails_with_the_reason_and_what_to_do(paths):
    paths.db.write_bytes(os.urandom(64 * 1024))  # not a database at all
    p = _ccd("daemon", "start")
    assert p.returncode == 1, p.stdout
    assert "daemon running" not in p.stdout
    assert "is damaged" in p.stderr and "ccd import" in p.stderr and "Traceback" not in p.stderr
    assert not daemon.info(paths).running
    status = _ccd("daemon", "status", "--json")
    assert "is damaged" in json.loads(status.stdout)["error"]


def test_a_daemon_a_service_manager_starts_leaves_its_reason(paths):
    """systemd/launchd run `ccd daemon run`; install.sh then waits with `ccd daemon status --wait`,
    which must report the daemon's death and its reason rather than "running"."""
    paths.db.write_bytes(os.urandom(64 * 1024))
    run = subprocess.Popen([sys.executable, "-m", "cc_capture", "daemon", "run"], stderr=subprocess.PIPE, text=True)
    try:
        assert run.wait(timeout=60) == 1
        assert "is damaged" in run.stderr.read()
    finally:
        run.kill()
    assert "is damaged" in daemon.info(paths).error
    p = _ccd("daemon", "status", "--wait")
    assert p.returncode == 1 and "is damaged" in p.stderr and "Traceback" not in p.stderr


def test_database_owned_by_another_user_start_fails_with_the_reason(paths):
    """A database left by another user (`sudo ccd ...`). Root may open anything, so the daemon runs
    in a user namespace without a mapping, where this process has no privilege over the file."""
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) not installed")
    store.connect(paths.db).conn.close()
    os.chown(paths.db, 12345, 12345)
    os.chmod(paths.db, 0o600)
    probe = subprocess.run(["unshare", "--user", "sh", "-c", f"cat {paths.db} >/dev/null"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("this process can still read another user's file inside a user namespace")
    p = _ccd("daemon", "start", prefix=("unshare", "--user"))
    assert p.returncode == 1 and "daemon running" not in p.stdout
    # (inside the namespace, uid 12345 shows as the overflow uid)
    assert "cannot read and write it" in p.stderr and "chown" in p.stderr and "Traceback" not in p.stderr
