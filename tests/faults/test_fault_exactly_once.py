"""Fault: the daemon killed (-9) while hooks write, on a busy machine. Every event exactly once.

The race behind issue 17's duplicate: the journal is listed (stat) while a hook has not yet
appended its end marker; by the time the file is read the record is complete. Its done-mark must
hold the identity of the bytes actually read, or a crash between commit and unlink re-ingests it.
"""

import os
import signal
import subprocess
import time

from cc_capture import daemon, journal
from cc_capture.config import CaptureSettings
from cc_capture.ingest.ingester import Ingester
from conftest import db_rows, EMITTER, wait_for
from support.faults import busy_cores


class Killed(BaseException):
    """Stands for kill -9 right after the commit: nothing after it runs."""



def _half_written(paths, name, payload: bytes):
    """A record whose hook has written the payload but not yet its end marker."""
    (paths.journal / name).write_bytes(payload)


def test_record_completed_between_listing_and_reading_is_not_ingested_twice(paths, db, monkeypatch):
    payload = b'{"hook_event_name":"PreToolUse","session_id":"s","prompt_id":"p","tool_name":"Bash",' \
              b'"tool_use_id":"toolu_window","tool_input":{"command":"ls"}}'
    _half_written(paths, "4242-0.ev", payload)
    real_list = journal.list_files

    def list_then_hook_finishes(journal_dir):
        files = real_list(journal_dir)
        with open(journal_dir / "4242-0.ev", "ab") as fh:  # the hook's printf lands now
            fh.write(journal.END_MARKER)
        return files

    def killed_before_unlink(*_):
        raise Killed

    monkeypatch.setattr(journal, "list_files", list_then_hook_finishes)
    monkeypatch.setattr(journal, "remove", killed_before_unlink)
    try:
        Ingester(paths, CaptureSettings(), db).run_pass()
    except Killed:
        pass
    monkeypatch.undo()
    assert db.execute("SELECT count(*) FROM events").fetchone() == (1,)
    assert (paths.journal / "4242-0.ev").exists()  # committed, not yet deleted: the restart must recognise it
    r = Ingester(paths, CaptureSettings(), db).run_pass()
    assert r.ingested == 0
    assert db.execute("SELECT count(*), count(DISTINCT tool_use_id) FROM events").fetchone() == (1, 1)
    assert not list(paths.journal.glob("*.ev"))


def test_too_large_is_decided_on_the_bytes_read_not_the_listing(paths, db, monkeypatch):
    """A record listed small that is complete and large when read is measured as it is."""
    _half_written(paths, "4243-0.ev", b'{"hook_event_name":"UserPromptSubmit","session_id":"s"')
    real_list = journal.list_files

    def list_then_hook_finishes(journal_dir):
        files = real_list(journal_dir)
        with open(journal_dir / "4243-0.ev", "ab") as fh:
            fh.write(b',"prompt_id":"p","prompt":"' + b"x" * 5000 + b'"}' + journal.END_MARKER)
        return files

    monkeypatch.setattr(journal, "list_files", list_then_hook_finishes)
    Ingester(paths, CaptureSettings(max_read_bytes=2000), db).run_pass()
    size = (len(b'{"hook_event_name":"UserPromptSubmit","session_id":"s"') + len(b',"prompt_id":"p","prompt":"')
            + 5000 + 2 + len(journal.END_MARKER))
    assert db.execute("SELECT reason, size FROM quarantine").fetchall() == [
        (f"record of {size} bytes is over max_read_bytes (2000); not read", size)]


BATCH = 200  # hooks per round of the burst; the burst runs round after round until told to stop
PARALLEL = 8
KILLS = 3
AFTER_EACH_RESTART = 400  # events the restarted daemon ingests before the next kill (or the stop)


def test_kill_9_several_times_during_a_parallel_burst_on_busy_cores(paths, tmp_path):
    """Real hooks, 8 at a time, every core busy, the daemon SIGKILLed three times and restarted
    while the hooks keep writing: each tool_use_id is stored exactly once.

    The burst runs until the test stops it, so every kill lands mid-burst however fast or slow
    the machine is; the number of hooks emitted is whatever the burst reached."""
    pad = "y" * 3000  # a payload cat writes in more than one go, so the end marker comes later
    stop, emitted_file = tmp_path / "stop", tmp_path / "emitted"
    hook = (
        f"printf \"{{\\\"hook_event_name\\\":\\\"PreToolUse\\\",\\\"session_id\\\":\\\"burst\\\","
        f"\\\"prompt_id\\\":\\\"p\\\",\\\"tool_name\\\":\\\"Bash\\\",\\\"tool_use_id\\\":\\\"toolu_@\\\","
        f"\\\"tool_input\\\":{{\\\"command\\\":\\\"{pad}\\\"}}}}\" | sh {EMITTER} {paths.home}"
    )
    script = (
        f"i=0; while [ ! -e {stop} ]; do "
        f"seq $i $((i + {BATCH - 1})) | xargs -P {PARALLEL} -I@ sh -c '{hook}' || exit 1; "
        f"i=$((i + {BATCH})); done; echo $i > {emitted_file}"
    )

    def count():
        return db_rows(paths, "SELECT count(*) FROM events")[0][0]

    kills = []
    with busy_cores():
        current = daemon.start(paths)
        burst = subprocess.Popen(["sh", "-c", script])
        try:
            for _ in range(KILLS + 1):
                floor = (kills[-1] if kills else 0) + AFTER_EACH_RESTART
                wait_for(lambda: count() >= floor, timeout=120, message=f"{floor} events ingested")
                if len(kills) == KILLS:
                    break
                os.kill(current.pid, signal.SIGKILL)
                wait_for(lambda: not daemon.info(paths).running, message="daemon gone")
                kills.append(count())
                time.sleep(0.2)  # hooks keep writing while it is down
                current = daemon.start(paths)
            stop.touch()
            assert burst.wait(timeout=300) == 0
            wait_for(lambda: not list(paths.journal.glob("*.ev")), timeout=120, message="journal drained")
        finally:
            burst.kill()
            daemon.stop(paths)
    emitted = int(emitted_file.read_text())
    total, distinct = db_rows(paths, "SELECT count(*), count(DISTINCT tool_use_id) FROM events")[0]
    print(f"{emitted} hooks, {PARALLEL} at a time, killed at {kills} events: {total} stored, {distinct} distinct")
    assert len(kills) == KILLS and kills[-1] + AFTER_EACH_RESTART <= emitted  # every kill was mid-burst
    assert (total, distinct) == (emitted, emitted)
    assert db_rows(paths, "SELECT count(*) FROM quarantine")[0] == (0,)
