"""The daemon's learning job (APScheduler 3.x): check the conditions every `check_interval_min`
and when the window opens; on `run`, start the pipeline as a subprocess and watch it.

The job runs in the scheduler's own thread with its own database connection, so capture never
waits on it; the pipeline is a separate process (its own session), so training never runs in the
daemon and survives a daemon restart (even a kill -9 of the daemon): the next daemon adopts it by
its recorded process (pid and start time, so a reused pid is not taken for it), never starts a
second one, and records its end. A pipeline whose process died without recording its end (or
whose heartbeat stopped) is marked failed with its last log lines at the next check; the next
eligible check resumes it from its last finished step.
`coalesce`, `max_instances=1` and a misfire grace of hours make a daemon that was down at the
window's start check as soon as it is back instead of silently skipping the night.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

from cc_capture import learning_state, store
from cc_capture.config import Paths, Settings
from cc_capture.learning_state import holder, log_tail
from cc_capture.processes import running, start_time, wait_exit
from cc_capture.scheduler.decide import Action, Decision, Window, decide
from cc_capture.scheduler.probes import machine_state
from cc_capture.scheduler.state import store_state

log = logging.getLogger("ccd.schedule")

MISFIRE_GRACE_S = 6 * 3600
ADOPTED_POLL_S = 30.0  # an adopted pipeline is not our child: without a pidfd, look whether it is alive this often


def default_command() -> list[str]:
    return [sys.executable, "-m", "cc_capture", "pipeline", "run", "--json"]


class LearningScheduler:
    """One job that decides, and at most one pipeline process it started (or adopted)."""

    def __init__(self, paths: Paths, settings: Settings) -> None:
        self.paths = paths
        self.settings = settings
        self.learning = settings.learning
        self.scheduler = None  # APScheduler's BackgroundScheduler, once started (imported only then)
        self.job = None
        self.pipeline_pid: int | None = None  # the pipeline this daemon started or adopted, while it runs
        self.last_key: tuple | None = None  # the last decision's action and conditions (log on change)

    def start(self) -> None:
        """Adopt what a previous daemon left running, then check now and on schedule. Turned off, the
        daemon records that once and starts no job (no thread that wakes for nothing)."""
        self.adopt()
        if not self.learning.enabled:
            self.check()
            return
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.combining import OrTrigger
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        # APScheduler logs two INFO lines per check ("Running job", "executed successfully"); the
        # daemon's log keeps one line per changed decision, and APScheduler's warnings (a missed run)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.scheduler = BackgroundScheduler(daemon=True)
        interval = IntervalTrigger(minutes=self.learning.check_interval_min)
        window = Window.parse(self.learning.window)
        trigger = interval if window.start is None else OrTrigger(
            [interval, CronTrigger(hour=window.start.hour, minute=window.start.minute)])
        self.job = self.scheduler.add_job(self.check, trigger, id="learning", coalesce=True, max_instances=1,
                                          misfire_grace_time=MISFIRE_GRACE_S, next_run_time=datetime.now().astimezone())
        self.scheduler.start()
        log.info("learning scheduler: window %s, checks every %g min", self.learning.window,
                 self.learning.check_interval_min)

    def shutdown(self) -> None:
        """Stop deciding; a pipeline that runs goes on (the next daemon adopts it)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def adopt(self) -> None:
        """Runs a previous daemon started: still running (the same process: pid and start time) →
        watch them; ended → record their end (and mark their pipeline failed if it died)."""
        db = store.connect(self.paths.db)
        try:
            for run in learning_state.unfinished_runs(db):
                if running(run["pid"], run["pid_start"]):
                    log.info("adopted the running pipeline (pid %d), log %s", run["pid"], run["log_path"])
                    self.pipeline_pid = run["pid"]
                    threading.Thread(target=self._watch_adopted, args=(run["id"], run["pid"], run["pid_start"],
                                                                       run["log_path"]),
                                     name="pipeline-watch", daemon=True).start()
                else:
                    learning_state.record_end(db, run["id"], time.time(), None, log_tail(run["log_path"]))
                    log.warning("the pipeline (pid %d) ended while the daemon was down; log %s", run["pid"],
                                run["log_path"])
            self._reap(db)
        finally:
            db.conn.close()

    def _reap(self, db: store.Database) -> None:
        """Mark the pipelines whose process died (or froze) without recording their end failed."""
        for pipeline_id in learning_state.reap_dead(db, self.paths):
            log.warning("pipeline %s died without recording its end: marked failed (`ccd pipeline log %s`); the "
                        "next eligible check resumes it", pipeline_id, pipeline_id)

    def check(self) -> Decision:
        """Gather the state, decide, record; start the pipeline on `run`."""
        now = datetime.now().astimezone()
        db = store.connect(self.paths.db)
        try:
            self._reap(db)
            busy = (f"the pipeline (pid {self.pipeline_pid})" if self.pipeline_pid
                    else str(holder(self.paths) or "") or None)
            decision = decide(now, self.learning, store_state(db, self.learning, busy),
                              machine_state(self.paths, self.learning, self.settings.train))
            next_run = self.job.next_run_time if self.job is not None else None
            decision_id = learning_state.record(db, now.timestamp(), decision.action.value,
                                               [(r.condition, r.message) for r in decision.reasons],
                                               next_run.timestamp() if next_run else None)
            key = (decision.action, tuple(r.condition for r in decision.reasons))
            if key != self.last_key:
                log.info("learning: %s: %s", decision.action.value, "; ".join(r.message for r in decision.reasons))
                self.last_key = key
            if decision.action is Action.RUN:
                self._launch(db, decision_id)
            return decision
        finally:
            db.conn.close()

    def _launch(self, db, decision_id: int) -> None:
        log_path = self.paths.logs / time.strftime("pipeline-%Y%m%d-%H%M%S.log")
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = subprocess.Popen(self.learning.pipeline_command or default_command(), stdout=fd,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    env=dict(os.environ, CC_CAPTURE_HOME=str(self.paths.home)), close_fds=True)
        except OSError as e:
            os.write(fd, f"could not start the pipeline: {e}\n".encode())
            learning_state.record_end(db, decision_id, time.time(), None, f"could not start the pipeline: {e}")
            log.error("could not start the pipeline: %s", e)
            return
        finally:
            os.close(fd)
        self.pipeline_pid = proc.pid
        learning_state.record_start(db, decision_id, proc.pid, start_time(proc.pid), str(log_path))
        log.info("pipeline started (pid %d), log %s", proc.pid, log_path)
        threading.Thread(target=self._watch, args=(decision_id, proc, str(log_path)), name="pipeline-watch",
                         daemon=True).start()

    def _ended(self, decision_id: int, pid: int, code: int | None, log_path: str) -> None:
        db = store.connect(self.paths.db)
        try:
            learning_state.record_end(db, decision_id, time.time(), code, log_tail(log_path))
            self._reap(db)
        finally:
            db.conn.close()
        self.pipeline_pid = None
        if code == 0:
            log.info("pipeline (pid %d) finished", pid)
        else:
            log.warning("pipeline (pid %d) failed (exit %s); log %s", pid, code, log_path)

    def _watch(self, decision_id: int, proc: subprocess.Popen, log_path: str) -> None:
        # Ended but not yet reaped, its pid is still ours, and so is its process group (it leads its
        # own session): workers it left behind (a training worker outlives a kill -9 of the pipeline)
        # are ended before the next pipeline could start a second worker on the same run.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        self._ended(decision_id, proc.pid, proc.wait(), log_path)

    def _watch_adopted(self, decision_id: int, pid: int, started: str | None, log_path: str) -> None:
        wait_exit(pid, started, ADOPTED_POLL_S)
        self._ended(decision_id, pid, None, log_path)
