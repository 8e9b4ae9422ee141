"""The daemon as a real background process: live ingest, restarts, kill -9 mid-burst, signals."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cc_capture import daemon, store
from conftest import db_rows, EMITTER, emit, wait_for



def count(paths, sql="SELECT count(*) FROM events"):
    db = store.connect(paths.db)
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.conn.close()


@pytest.fixture
def running(paths):
    info = daemon.start(paths)
    assert info.running and info.pid
    yield info
    daemon.stop(paths)


def prompt(i, session="s"):
    return {"hook_event_name": "UserPromptSubmit", "session_id": session, "prompt_id": f"p{i}", "prompt": f"n={i}"}


def test_live_ingest_and_clean_stop(paths, running):
    emit(paths, prompt(1))
    wait_for(lambda: count(paths) == 1, message="event ingested")
    assert not list(paths.journal.glob("*.ev"))
    info = daemon.info(paths)
    assert info.pid == running.pid and info.uptime_s >= 0
    assert daemon.stop(paths)
    assert not daemon.info(paths).running and not paths.pidfile.exists()
    assert "ccd daemon stopped" in paths.daemon_log.read_text()


def test_events_wait_while_daemon_is_down(paths):
    for i in range(20):
        assert emit(paths, prompt(i)).returncode == 0
    assert count(paths) == 0 and len(list(paths.journal.glob("*.ev"))) == 20
    daemon.start(paths)
    try:
        wait_for(lambda: count(paths) == 20, message="backlog ingested on start")
    finally:
        daemon.stop(paths)


def test_only_one_daemon_per_home(paths, running):
    p = subprocess.run([sys.executable, "-m", "cc_capture", "daemon", "run"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "already running" in p.stderr and str(running.pid) in p.stderr
    assert daemon.start(paths).pid == running.pid  # start is idempotent


def test_stale_pidfile_does_not_block_start(paths):
    paths.pidfile.write_text(json.dumps({"pid": 999999, "started_at": 0}))
    info = daemon.start(paths)
    try:
        assert info.pid != 999999
    finally:
        daemon.stop(paths)


def _dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_a_killed_daemons_state_is_not_taken_for_its_successor(paths):
    """After kill -9 the state file still names the dead daemon, ready. Between its successor taking
    the lock and writing its own state, nothing may report the dead pid (the CI failure: `start`
    returned it, and the next kill found no such process)."""
    from cc_capture import homelock

    dead = _dead_pid()
    paths.ensure()
    paths.pidfile.write_text(json.dumps({"pid": dead, "started_at": time.time() - 5, "ready": True}))
    successor = subprocess.Popen(["sleep", "30"])
    try:
        with homelock.hold(paths):  # the successor has the lock, not yet its state
            info = daemon.info(paths)
            assert info.running and info.pid is None and not info.ready
            with pytest.raises(daemon.DaemonError, match="did not become ready"):
                daemon.wait_ready(paths, timeout_s=0.5, proc=successor)
        # the killed daemon's pid already reused by another process (here: this one), not it
        paths.pidfile.write_text(json.dumps({"pid": os.getpid(), "pid_start": "linux:0", "started_at": time.time(),
                                             "ready": True}))
        with homelock.hold(paths):
            assert daemon.info(paths).pid is None
    finally:
        successor.kill()
        successor.wait()


def test_two_starts_at_once_both_return_the_daemon_that_won(paths, running):
    """A second `ccd daemon start` racing the first (or a service manager's) starts a process that
    finds the home taken and exits; the start returns the daemon that runs, not an error."""
    env = dict(os.environ, CC_CAPTURE_HOME=str(paths.home))
    loser = subprocess.Popen([sys.executable, "-m", "cc_capture", "daemon", "run"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert daemon.wait_ready(paths, timeout_s=30, proc=loser).pid == running.pid
    assert loser.wait(timeout=30) == 1


BURST = 3000


def test_kill_9_mid_burst_loses_and_duplicates_nothing(paths):
    """Thousands of real hook runs; the daemon is SIGKILLed mid-way and restarted."""
    script = (
        f'i=0; while [ $i -lt {BURST} ]; do '
        f'printf \'{{"hook_event_name":"UserPromptSubmit","session_id":"burst","prompt_id":"p%d","prompt":"n=%d"}}\' $i $i'
        f' | sh {EMITTER} {paths.home}; i=$((i+1)); done'
    )
    first = daemon.start(paths)
    burst = subprocess.Popen(["sh", "-c", script])
    try:
        wait_for(lambda: count(paths) > 300, timeout=120, message="some of the burst ingested")
        os.kill(first.pid, signal.SIGKILL)
        wait_for(lambda: not daemon.info(paths).running, message="daemon gone")
        killed_at = count(paths)
        time.sleep(0.5)  # events keep arriving while it is down
        second = daemon.start(paths)
        assert second.pid != first.pid
        assert burst.wait(timeout=300) == 0
        wait_for(lambda: count(paths) == BURST, timeout=120, message="whole burst ingested")
    finally:
        burst.kill()
        daemon.stop(paths)
    assert killed_at < BURST
    assert count(paths, "SELECT count(DISTINCT prompt_id) FROM events") == BURST
    assert count(paths, "SELECT count(*) FROM traces") == BURST
    assert count(paths, "SELECT count(*) FROM quarantine") == 0
    assert not list(paths.journal.glob("*.ev"))


def test_sigterm_in_foreground_run(paths):
    p = subprocess.Popen([sys.executable, "-m", "cc_capture", "daemon", "run"], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: daemon.info(paths).running, message="foreground daemon up")
    emit(paths, prompt(1))
    wait_for(lambda: count(paths) == 1, message="ingested")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    assert "ccd daemon stopped" in p.stderr.read()


def test_daemon_computes_signals_when_a_trace_closes(paths, running):
    base = {"session_id": "s", "prompt_id": "live", "cwd": "/w"}
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt": "Which Python does the project need?"})
    call = {**base, "tool_name": "Read", "tool_use_id": "t1", "tool_input": {"file_path": "/w/pyproject.toml"}}
    emit(paths, {**call, "hook_event_name": "PreToolUse"})
    emit(paths, {**call, "hook_event_name": "PostToolUse", "tool_response": {"type": "text"}})
    wait_for(lambda: count(paths, "SELECT count(*) FROM tool_calls") == 1, message="call ingested")
    assert count(paths, "SELECT count(*) FROM signals") == 0  # open: not yet
    emit(paths, {**base, "hook_event_name": "Stop", "last_assistant_message": "Python 3.10 or newer (pyproject.toml)."})
    wait_for(lambda: count(paths, "SELECT count(*) FROM signals") == 1, message="signals computed live")
    assert count(paths, "SELECT json_extract(signals, '$.used_rag') FROM signals") == 1


def test_backfill_of_existing_transcripts_does_not_hold_up_live_events(paths, shared, tmp_path, monkeypatch):
    """History already on disk is imported in the background while hook events are ingested at once."""
    import shutil

    projects = tmp_path / "home" / ".claude" / "projects"
    shutil.copytree(shared / "transcripts", projects / "history")
    (paths.home / "config.toml").write_text(f"[capture]\ntranscript_roots = [{str(projects)!r}]\n")
    emit(paths, prompt(1, session="live"))
    daemon.start(paths)
    try:
        wait_for(lambda: count(paths, "SELECT count(*) FROM traces WHERE trace_id = 'p1'") == 1, message="live event")
        # 14 prompts in the history, less 3 built-in commands the model never answered
        wait_for(lambda: count(paths, "SELECT count(*) FROM traces") == 12, timeout=60, message="history imported")
        done = wait_for(lambda: next((line for line in paths.daemon_log.read_text().splitlines()
                                      if "transcripts: " in line), None), message="the backfill's end logged")
    finally:
        daemon.stop(paths)
    assert count(paths, "SELECT count(*) FROM traces WHERE source = 'transcript'") == 11
    # the live event was ingested while the backfill still ran, not after it
    (ingested_at,) = [r for (r,) in db_rows(paths, "SELECT ingested_at FROM events WHERE prompt_id = 'p1'")]
    stamp, ms = done[:23].split(",")  # logging's asctime, local time
    backfill_done = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000
    assert ingested_at < backfill_done, (ingested_at, done)
