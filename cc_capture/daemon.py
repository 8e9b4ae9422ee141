"""The long-running `ccd` daemon: watch the journal, ingest, keep transcripts read, stay healthy.

One daemon per home folder, enforced by an exclusive lock on `ccd.lock` (a stale pidfile can
never block a start). The journal is watched with watchdog (inotify / FSEvents) and rescanned
every `poll_interval_s` in case an event is missed. Transcripts lag the hooks, so a session's
transcript stays "hot" (re-read when it grows) for `transcript_hot_s` after its last event.
The daemon never imports torch or trains in-process (DESIGN.md).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cc_capture import store
from cc_capture.config import Paths, Settings, load_settings
from cc_capture.ingest.ingester import Ingester
from cc_capture.logfiles import rotate, rotate_own_log
from cc_capture.signals.runner import compute_pending

log = logging.getLogger("ccd")


class DaemonError(Exception):
    """Starting or stopping the daemon failed; the message says why and what to do."""


@dataclass
class DaemonInfo:
    running: bool
    pid: int | None
    uptime_s: float | None


def open_lock(paths: Paths) -> IO[str]:
    """The home's lock file (0600, also when an older version made it 0644), open for flock."""
    paths.ensure()
    fd = os.open(paths.lockfile, os.O_RDWR | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "r+")


def info(paths: Paths) -> DaemonInfo:
    """Whether a daemon holds this home's lock, and its pid and uptime from the pidfile."""
    if not paths.lockfile.exists():
        return DaemonInfo(False, None, None)
    with open(paths.lockfile, "r") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(fh, fcntl.LOCK_UN)
            return DaemonInfo(False, None, None)
    try:
        meta = json.loads(paths.pidfile.read_text())
        return DaemonInfo(True, int(meta["pid"]), round(time.time() - float(meta["started_at"]), 1))
    except (OSError, ValueError, KeyError):
        return DaemonInfo(True, None, None)


class _Wake:
    """watchdog handler: any change in the journal folder wakes the loop."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def dispatch(self, _event: object) -> None:
        self.event.set()


class _TranscriptChanged:
    """watchdog handler for the transcript folders: any *.jsonl written marks its session."""

    def __init__(self, daemon: "Daemon") -> None:
        self.daemon = daemon

    def dispatch(self, event) -> None:
        path = getattr(event, "dest_path", "") or event.src_path
        if str(path).endswith(".jsonl") and not event.is_directory:
            self.daemon.transcript_changed(Path(path))


class Daemon:
    def __init__(self, paths: Paths | None = None, settings: Settings | None = None) -> None:
        self.paths = (paths or Paths()).ensure()
        self.settings = settings or load_settings(self.paths)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.hot: dict[Path, float] = {}  # session transcript → re-read until then
        self.lock = threading.Lock()  # guards `hot`, which the transcript watcher also fills

    def request_stop(self, *_: object) -> None:
        self.stopping.set()
        self.wake.set()

    def run(self) -> None:
        """Run in the foreground until SIGTERM/SIGINT."""
        lock = open_lock(self.paths)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = info(self.paths)
            raise DaemonError(f"a ccd daemon is already running for {self.paths.home} (pid {other.pid})") from None
        old_umask = os.umask(0o077)
        self.paths.pidfile.write_text(json.dumps({"pid": os.getpid(), "started_at": time.time()}))
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        db = store.connect(self.paths.db)
        self.db = db
        ingester = Ingester(self.paths, self.settings.capture, db)
        observer = self._watch()
        log.info("ccd daemon started (pid %d), home %s", os.getpid(), self.paths.home)
        try:
            self._loop(ingester)
        finally:
            observer.stop()
            observer.join(timeout=5)
            db.conn.close()
            try:
                self.paths.pidfile.unlink()
            except FileNotFoundError:
                pass
            os.umask(old_umask)
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
            log.info("ccd daemon stopped")

    def _watch(self):  # -> watchdog Observer
        from watchdog.observers import Observer

        observer = Observer()
        observer.schedule(_Wake(self.wake), str(self.paths.journal), recursive=False)
        if self.settings.capture.mirror_transcripts:
            for root in self.settings.capture.roots():
                if root.is_dir():
                    observer.schedule(_TranscriptChanged(self), str(root), recursive=True)
        observer.daemon = True
        observer.start()
        return observer

    def transcript_changed(self, path: Path) -> None:
        """Live mirroring: a transcript grew; import its session soon (debounced by the loop)."""
        main = path.parent.parent.with_suffix(".jsonl") if path.parent.name == "subagents" else path
        with self.lock:
            self.hot[main] = time.time() + self.settings.capture.transcript_hot_s
        self.wake.set()

    def _backfill(self) -> None:
        """Import what changed in the transcript folders while the daemon was down (months of history
        on a first start): in a thread of its own, so live events never wait behind it."""
        from cc_capture.transcripts.importer import import_paths

        roots = [r for r in self.settings.capture.roots() if r.is_dir()]
        if not (self.settings.capture.mirror_transcripts and roots):
            return
        db = store.connect(self.paths.db)
        try:
            stats = import_paths(db, roots, max_output_chars=self.settings.capture.max_output_chars)
            compute_pending(db, self.settings.gates)
            log.info("transcripts: %d files read, %d new traces, %d new tool calls", stats.files, stats.traces,
                     stats.tool_calls)
        except Exception:
            log.exception("transcript backfill failed")
        finally:
            db.conn.close()

    def _loop(self, ingester: Ingester) -> None:
        cfg = self.settings.capture
        threading.Thread(target=self._backfill, name="transcript-backfill", daemon=True).start()
        while not self.stopping.is_set():
            self.wake.clear()
            waiting = 0
            try:
                self._rotate_logs()
                result = ingester.run_pass()
                now = time.time()
                with self.lock:
                    for path in result.transcripts:
                        self.hot[path] = now + cfg.transcript_hot_s
                if result.ingested or result.quarantined:
                    log.info("ingested %d events, quarantined %d", result.ingested, result.quarantined)
                waiting = result.waiting
                self._read_hot_transcripts(ingester, now)
                signals = compute_pending(self.db, self.settings.gates)
                if signals.computed or signals.failed:
                    log.info("signals for %d traces (%d qualify, %d failed)", signals.computed, signals.qualifies,
                             signals.failed)
            except Exception:  # never die on one bad pass: log it, back off, go on
                log.exception("ingest pass failed")
                self.stopping.wait(cfg.poll_interval_s)
            timeout = 0.2 if self.hot else cfg.poll_interval_s
            if waiting:
                timeout = min(timeout, 0.05)
            self.wake.wait(timeout)

    def _rotate_logs(self) -> None:
        limit = self.settings.capture.max_log_bytes
        if rotate_own_log(self.paths.daemon_log, limit):
            log.info("daemon.log rotated (over %d bytes); the previous one is daemon.log.1", limit)
        rotate(self.paths.hook_errors, limit)

    def _read_hot_transcripts(self, ingester: Ingester, now: float) -> None:
        """Transcripts lag the hooks: re-read a session's files while it is hot (cheap when unchanged)."""
        with self.lock:
            paths = list(self.hot)
            for path, until in list(self.hot.items()):
                if now > until:
                    del self.hot[path]
        if paths:
            ingester.sync_transcripts(set(paths))


# ---------------------------------------------------------------- background control


def start(paths: Paths, timeout_s: float = 15.0) -> DaemonInfo:
    """Start `ccd daemon run` detached, logging to logs/daemon.log; wait until it holds the lock."""
    current = info(paths)
    if current.running:
        return current
    paths.ensure()
    logf = os.open(paths.daemon_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    env = dict(os.environ, CC_CAPTURE_HOME=str(paths.home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cc_capture", "daemon", "run"],
        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True, env=env, close_fds=True,
    )
    os.close(logf)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        current = info(paths)
        if current.running and current.pid:
            return current
        if proc.poll() is not None:
            raise DaemonError(f"the daemon exited at once (code {proc.returncode}); see {paths.daemon_log}")
        time.sleep(0.05)
    raise DaemonError(f"the daemon did not start within {timeout_s:.0f}s; see {paths.daemon_log}")


def stop(paths: Paths, timeout_s: float = 15.0) -> bool:
    """SIGTERM the daemon and wait for it to let go of the lock; False if none was running."""
    current = info(paths)
    if not current.running or current.pid is None:
        return False
    try:
        os.kill(current.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if not info(paths).running:
            return True
        time.sleep(0.05)
    raise DaemonError(f"the daemon (pid {current.pid}) did not stop within {timeout_s:.0f}s")


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
