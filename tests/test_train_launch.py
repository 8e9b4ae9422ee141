"""Starting a run's worker: what counts as an earlier worker still running (cc_capture.train.launch)."""

from __future__ import annotations

import os

import pytest

from cc_capture.processes import start_time
from cc_capture.records import Phase, RunStatus
from cc_capture.train import launch, runs


def test_a_process_that_reused_a_dead_workers_pid_does_not_hold_up_the_runs_resume(db):
    """After a reboot or a crash, a run still marked running names a pid another process may have
    got: resuming must not wait for that stranger, nor tell the user to kill it."""
    run_id = runs.create(db, Phase.SFT, {"base_model": "tiny"}, None, None)
    runs.update(db, run_id, status=RunStatus.RUNNING, pid=os.getpid(), pid_start="linux:0")
    launch._wait_for_previous_worker(db, run_id, timeout_s=0.5)  # this process has the pid; it is not the worker
    runs.update(db, run_id, pid=0, pid_start=None)
    launch._wait_for_previous_worker(db, run_id, timeout_s=0.5)  # pid 0 names no process (kill(0) is a group)

    runs.update(db, run_id, pid=os.getpid(), pid_start=start_time(os.getpid()))  # now the worker's pid and start time
    with pytest.raises(launch.LaunchError, match=rf"earlier worker \(pid {os.getpid()}\) is still running"):
        launch._wait_for_previous_worker(db, run_id, timeout_s=0.3)
