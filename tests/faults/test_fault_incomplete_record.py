"""Fault: a journal record that stays incomplete (a hook still writing, or killed) must not make
the daemon spin: its own reads of the file fire inotify events that must not wake it."""

import os
import threading
import time

from watchdog.observers import Observer

from cc_capture import daemon


class _Opens:
    """Counts the times any process opens `name` in the journal (inotify IN_OPEN)."""

    def __init__(self, name):
        self.name = name
        self.count = 0
        self.lock = threading.Lock()

    def dispatch(self, event):
        if event.event_type == "opened" and os.path.basename(event.src_path) == self.name:
            with self.lock:
                self.count += 1


def _cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WINDOW_S = 4.0


def test_incomplete_record_does_not_make_the_daemon_spin(paths):
    d = daemon.start(paths)
    try:
        time.sleep(1.0)  # let the start settle
        name = "77777-0.ev"
        opens = _Opens(name)
        observer = Observer()
        observer.schedule(opens, str(paths.journal))
        observer.start()
        try:
            (paths.journal / name).write_bytes(b'{"hook_event_name":"UserPromptSubmit","session_id":"s"')
            time.sleep(0.5)
            before, cpu_before, t0 = opens.count, _cpu_s(d.pid), time.monotonic()
            time.sleep(WINDOW_S)
            reads, cpu = opens.count - before, _cpu_s(d.pid) - cpu_before
            elapsed = time.monotonic() - t0
        finally:
            observer.stop()
            observer.join()
        assert daemon.info(paths).running
    finally:
        daemon.stop(paths)
    print(f"incomplete record: {reads} reads and {cpu / elapsed:.2f} cores over {elapsed:.1f}s")
    # One read per poll interval (1 s) at most, with slack; the spinning daemon read it hundreds of times.
    assert reads <= 2 * WINDOW_S + 2, reads
    assert (paths.journal / name).exists()  # still waiting for its end marker, not quarantined early
