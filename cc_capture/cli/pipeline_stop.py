"""`ccd pipeline stop` (interrupt the running pipeline cleanly; the next run resumes it) and
`ccd pipeline log` (what the pipeline processes the daemon started wrote)."""

from __future__ import annotations

import typer

from collections import deque
from typing import Optional

from cc_capture import learning_state
from cc_capture.cli.output import console, fail, open_db
from cc_capture.paths import Paths
from cc_capture.pipeline import control


def pipeline_stop(timeout: float = typer.Option(120.0, "--timeout", min=1,
                                                help="Seconds to wait for it to stop.")) -> None:
    """Stop the running pipeline as Ctrl-C would: its training saves where it was and the step is
    recorded interrupted; `ccd pipeline run` (or the daemon's next window) resumes it."""
    try:
        stopped = control.stop(Paths(), timeout)
    except TimeoutError as e:
        fail(str(e))
    if stopped is None:
        console.print("No pipeline is running.")
        return
    console.print(f"Stopped {stopped}; `ccd pipeline run` resumes it from its last finished step.", highlight=False)


def pipeline_log(pipeline_id: Optional[str] = typer.Argument(None, help="A pipeline id (default: the latest the "
                                                                         "daemon started)."),
                 lines: int = typer.Option(50, "--lines", "-n", min=1, help="Last lines of each log.")) -> None:
    """The log of a pipeline the daemon started (one file per process: a resumed pipeline has several)."""
    db = open_db()
    try:
        logs = learning_state.pipeline_logs(db, pipeline_id)
    except KeyError:
        fail(f"no pipeline {pipeline_id}; `ccd status` names the last one")
    finally:
        db.conn.close()
    if not logs:
        fail("no pipeline log: the daemon has started no pipeline" + (" in that one's time (one run by hand wrote "
                                                                       "to its terminal)" if pipeline_id else ""))
    for path in logs:
        console.print(f"[bold]{path}[/]", highlight=False, soft_wrap=True)
        try:
            with open(path, errors="replace") as fh:
                console.out("".join(deque(fh, maxlen=lines)), end="", highlight=False)
        except OSError as e:
            console.print(f"  (cannot be read: {e.strerror})", highlight=False)
