"""The long-running `ccd` daemon: watch the journal, ingest, keep transcripts read, stay healthy.

One daemon per home folder, enforced by an exclusive lock on `ccd.lock` (a stale pidfile can
never block a start). The journal is watched with watchdog (inotify / FSEvents) and rescanned
every `poll_interval_s` in case an event is missed. Transcripts lag the hooks, so a session's
transcript stays "hot" (re-read when it grows) for `transcript_hot_s` after its last event.
The daemon never imports torch or trains in-process (DESIGN.md).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from cc_capture import homelock, store
from cc_capture.config import Paths, Settings, load_settings
from cc_capture.homelock import DaemonInfo, HomeBusy, info
from cc_capture.ingest.ingester import Ingester
from cc_capture.pipeline.ingest import ingest_pass

log = logging.getLogger("ccd")


class DaemonError(Exception):
    """Starting or stopping the daemon failed; the message says why and what to do."""


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
        with ExitStack() as held:
            try:
                held.enter_context(homelock.hold(self.paths))
            except HomeBusy:
                other = info(self.paths)
                raise DaemonError(f"a ccd daemon is already running for {self.paths.home} (pid {other.pid})") from None
            old_umask = os.umask(0o077)
            self.paths.pidfile.write_text(json.dumps({"pid": os.getpid(), "started_at": time.time()}))
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, self.request_stop)
                signal.signal(signal.SIGINT, self.request_stop)
            db = store.connect(self.paths.db)
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
        from cc_capture.pipeline.transcripts import import_transcripts
        from cc_capture.transcripts.importer import discover

        roots = [r for r in self.settings.capture.roots() if r.is_dir()]
        if not (self.settings.capture.mirror_transcripts and roots):
            return
        db = store.connect(self.paths.db)
        try:
            stats = import_transcripts(db, discover(roots), self.settings).stats
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
                done = ingest_pass(ingester, self.settings.gates, self._hot_transcripts)
                if done.journal.ingested or done.journal.quarantined:
                    log.info("ingested %d events, quarantined %d", done.journal.ingested, done.journal.quarantined)
                waiting = done.journal.waiting
                if done.signals.computed or done.signals.failed:
                    log.info("signals for %d traces (%d qualify, %d failed)", done.signals.computed,
                             done.signals.qualifies, done.signals.failed)
            except Exception:  # never die on one bad pass: log it, back off, go on
                log.exception("ingest pass failed")
                self.stopping.wait(cfg.poll_interval_s)
            timeout = 0.2 if self.hot else cfg.poll_interval_s
            if waiting:
                timeout = min(timeout, 0.05)
            self.wake.wait(timeout)

    def _hot_transcripts(self, touched: set[Path]) -> set[Path]:
        """Transcripts lag the hooks: a session's files are re-read (cheap when unchanged) for
        transcript_hot_s after its last event; returns those to read in this pass."""
        now = time.time()
        with self.lock:
            for path in touched:
                self.hot[path] = now + self.settings.capture.transcript_hot_s
            paths = set(self.hot)
            for path, until in list(self.hot.items()):
                if now > until:
                    del self.hot[path]
        return paths


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
