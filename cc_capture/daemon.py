"""The long-running `ccd` daemon: watch the journal, ingest, keep transcripts read, stay healthy.

One daemon per home folder, enforced by an exclusive lock on `ccd.lock` (a stale pidfile can
never block a start). The journal is watched with watchdog (inotify / FSEvents) and rescanned
every `poll_interval_s` in case an event is missed. Transcripts lag the hooks, so a session's
transcript stays "hot" (re-read when it grows) for `transcript_hot_s` after its last event.
The daemon never imports torch or trains in-process (DESIGN.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from cc_capture import homelock, processes, store
from cc_capture.config import Paths, Settings, load_settings
from cc_capture.health import database_access, database_integrity
from cc_capture.homelock import DaemonInfo, HomeBusy, info, read_state, write_state
from cc_capture.ingest.ingester import Ingester
from cc_capture.logfiles import rotate, rotate_own_log
from cc_capture.pipeline.ingest import ingest_pass
from cc_capture.scheduler.job import LearningScheduler

log = logging.getLogger("ccd")

TRANSCRIPT_POLL_S = 5.0  # transcript folders are polled this often when inotify is unavailable


class DaemonError(Exception):
    """Starting or stopping the daemon failed; the message says why and what to do."""


# Only writes wake the daemon: its own reads of a file fire open/close-without-write events, and
# waking on those made it spin while a record stayed incomplete (issue 17).
_WRITE_EVENTS = frozenset({"created", "modified", "moved", "closed"})


class _Wake:
    """watchdog handler: a file written in the journal folder wakes the loop."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def dispatch(self, event) -> None:
        if event.event_type in _WRITE_EVENTS:
            self.event.set()


class _TranscriptChanged:
    """watchdog handler for the transcript folders: any *.jsonl written marks its session."""

    def __init__(self, daemon: "Daemon") -> None:
        self.daemon = daemon

    def dispatch(self, event) -> None:
        if event.event_type not in _WRITE_EVENTS:
            return
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
        self.state: dict = {}  # what the state file says (see info())
        self.polling = False  # no file events (inotify refused): the journal is polled
        self.db: store.Database | None = None
        self.ingester: Ingester | None = None

    def request_stop(self, *_: object) -> None:
        self.stopping.set()
        self.wake.set()

    def warn(self, message: str) -> None:
        """A degraded but running state: logged, and shown by `ccd status` until the daemon stops."""
        log.warning("%s", message)
        self.state["warnings"] = self.state.get("warnings", [])[-9:] + [message]
        write_state(self.paths, self.state)

    def run(self) -> None:
        """Run in the foreground until SIGTERM/SIGINT. Ready (in the state file) only once the store
        and the watchers are up; a failure before that is written there for `ccd daemon start`."""
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(homelock.hold(self.paths))
            except HomeBusy:
                other = info(self.paths)
                raise DaemonError(f"a ccd daemon is already running for {self.paths.home} (pid {other.pid})") from None
            self._run_held()

    def _run_held(self) -> None:
        old_umask = os.umask(0o077)
        self.state = {"pid": os.getpid(), "pid_start": processes.start_time(os.getpid()), "started_at": time.time(),
                      "ready": False, "warnings": []}
        write_state(self.paths, self.state)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        observer = None
        failed = None
        learning = None
        try:
            try:
                self._open_store()
                observer = self._watch()
            except Exception as e:
                failed = f"{e}" if isinstance(e, DaemonError) else f"{type(e).__name__}: {e}"
                log.error("ccd daemon could not start: %s", failed)
                raise DaemonError(failed) from e
            self.state["ready"] = True
            write_state(self.paths, self.state)
            log.info("ccd daemon started (pid %d), home %s", os.getpid(), self.paths.home)
            learning = self._start_learning()
            self._loop()
        finally:
            if learning is not None:
                learning.shutdown()
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
            if self.db is not None:
                self.db.conn.close()
            if failed:
                write_state(self.paths, {"pid": os.getpid(), "error": failed, "failed_at": time.time()})
            else:
                try:
                    self.paths.pidfile.unlink()
                except FileNotFoundError:
                    pass
            os.umask(old_umask)
            if not failed:
                log.info("ccd daemon stopped")

    def _start_learning(self) -> LearningScheduler | None:
        """The learning job, in the scheduler's thread; capture runs on whatever happens to it."""
        try:
            learning = LearningScheduler(self.paths, self.settings)
            learning.start()
            return learning
        except Exception as e:
            self.warn(f"the learning scheduler could not start ({type(e).__name__}: {e}): capture goes on, "
                      "the model is not retrained on its own")
            return None

    def _open_store(self) -> None:
        """Check the database, open it, and the ingester on it; a damaged file stops the start with
        what to do (writing into it could lose more)."""
        denied = database_access(self.paths.db)
        if denied:
            raise DaemonError(denied)
        health = database_integrity(self.paths.db)
        if not health.ok:
            raise DaemonError(f"the database {self.paths.db} is damaged ({'; '.join(health.problems)}): "
                              f"{health.advice}")
        aside = store.set_aside_orphans(self.paths.db)
        self.db = store.connect(self.paths.db)
        self.ingester = Ingester(self.paths, self.settings.capture, self.db)
        if aside:
            self.warn(f"the database {self.paths.db} was missing beside its write-ahead log (moved to {aside}); "
                      "a new database was started; `ccd import` rebuilds traces from the transcripts")

    def _database_gone(self) -> None:
        """The database file was deleted or replaced under the open connection: stop writing into
        it, put back what it held (or use the file now there), reopen, say so. Journal records
        committed into the lost file were not deleted, so they are ingested again into the new one."""
        restored = store.restore_deleted(self.db, self.paths.db)
        self.db.conn.close()
        self.db = None
        self.db = store.connect(self.paths.db)
        self.ingester = Ingester(self.paths, self.settings.capture, self.db)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        if restored:
            self.warn(f"the database {self.paths.db} was deleted while the daemon ran ({when}); "
                      "it was restored from the still-open file and capture goes on")
        else:
            self.warn(f"the database {self.paths.db} was deleted or replaced while the daemon ran ({when}); "
                      "capture goes on in the file now there; `ccd import` rebuilds traces from the transcripts")
        threading.Thread(target=self._backfill, name="transcript-backfill", daemon=True).start()

    def _watch(self):  # -> watchdog Observer
        """inotify / FSEvents watchers; when the system refuses one (the inotify instance or watch
        limit, which IDEs commonly exhaust), poll instead and say so: never a dead daemon."""
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        roots = [r for r in self.settings.capture.roots() if r.is_dir()] \
            if self.settings.capture.mirror_transcripts else []
        observer = None
        try:
            observer = Observer()  # watchdog >= 6 opens its inotify instance here
            observer.schedule(_Wake(self.wake), str(self.paths.journal), recursive=False)
            for root in roots:
                observer.schedule(_TranscriptChanged(self), str(root), recursive=True)
            observer.daemon = True
            observer.start()
            return observer
        except OSError as e:
            if observer is not None:
                with contextlib.suppress(Exception):
                    observer.stop()
            reason = e.strerror or str(e)
        self.polling = True
        poller = PollingObserver(timeout=TRANSCRIPT_POLL_S)
        for root in roots:
            poller.schedule(_TranscriptChanged(self), str(root), recursive=True)
        poller.daemon = True
        poller.start()
        self.warn(f"file watching unavailable ({reason}): polling the journal every "
                  f"{self.settings.capture.poll_interval_s:g}s and the transcripts every {TRANSCRIPT_POLL_S:g}s "
                  "(raise fs.inotify.max_user_instances / max_user_watches and restart the daemon to watch again)")
        return poller

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
        from cc_capture.transcripts.discovery import discover

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

    def _loop(self) -> None:
        cfg = self.settings.capture
        threading.Thread(target=self._backfill, name="transcript-backfill", daemon=True).start()
        while not self.stopping.is_set():
            self.wake.clear()
            waiting = 0
            try:
                self._rotate_logs()
                done = ingest_pass(self.ingester, self.settings.gates, self._hot_transcripts)
                if done.journal.ingested or done.journal.quarantined:
                    log.info("ingested %d events, quarantined %d", done.journal.ingested, done.journal.quarantined)
                waiting = done.journal.waiting
                if done.signals.computed or done.signals.failed:
                    log.info("signals for %d traces (%d qualify, %d failed)", done.signals.computed,
                             done.signals.qualifies, done.signals.failed)
            except store.DatabaseGone:
                log.error("the database %s was deleted or replaced under the daemon", self.paths.db)
                try:
                    self._database_gone()
                except Exception:
                    log.exception("could not reopen the database")
                    self.stopping.wait(cfg.poll_interval_s)
                continue
            except Exception:  # never die on one bad pass: log it, back off, go on
                log.exception("ingest pass failed")
                self.stopping.wait(cfg.poll_interval_s)
            timeout = 0.2 if self.hot else cfg.poll_interval_s
            if waiting and self.polling:  # no file events to say when an incomplete record is finished
                timeout = min(timeout, 0.2)
            self.wake.wait(timeout)

    def _rotate_logs(self) -> None:
        limit = self.settings.capture.max_log_bytes
        if rotate_own_log(self.paths.daemon_log, limit):
            log.info("daemon.log rotated (over %d bytes); the previous one is daemon.log.1", limit)
        rotate(self.paths.hook_errors, limit)

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


def start(paths: Paths, timeout_s: float = 60.0) -> DaemonInfo:
    """Start `ccd daemon run` detached, logging to logs/daemon.log; return once it is ready (the store
    and the watchers up), or raise with the reason it gave for dying."""
    current = info(paths)
    if current.running:
        return wait_ready(paths, timeout_s)
    paths.ensure()
    logf = os.open(paths.daemon_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    env = dict(os.environ, CC_CAPTURE_HOME=str(paths.home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cc_capture", "daemon", "run"],
        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True, env=env, close_fds=True,
    )
    os.close(logf)
    return wait_ready(paths, timeout_s, proc)


def wait_ready(paths: Paths, timeout_s: float = 60.0, proc: subprocess.Popen | None = None) -> DaemonInfo:
    """Wait until the daemon of this home says it is ready; raise DaemonError with its reason if it
    dies first (also one that systemd or launchd started)."""
    started = time.time()
    seen = False
    while time.time() < started + timeout_s:
        lost = proc is not None and proc.poll() is not None  # polled before the state is read
        current = info(paths)
        if lost and current.running and current.pid is not None and current.pid != proc.pid:
            proc = None  # ours found another daemon holding the home (two starts at once): wait for that one
        if current.running and current.pid and current.ready and (proc is None or current.pid == proc.pid):
            return current
        seen = seen or current.running
        if proc is not None:
            exited = proc.poll() is not None
        else:  # a service manager's daemon: gone after we saw it, or failed just before we looked
            exited = not current.running and (seen or read_state(paths).get("failed_at", 0) >= started - 30)
        if exited:
            time.sleep(0.05)  # its last words may still be on their way to the state file
            reason = info(paths).error or "no reason given"
            code = f" (code {proc.returncode})" if proc is not None else ""
            raise DaemonError(f"the daemon exited at start{code}: {reason}; log: {paths.daemon_log}")
        time.sleep(0.05)
    raise DaemonError(f"the daemon did not become ready within {timeout_s:.0f}s; see {paths.daemon_log}")


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
