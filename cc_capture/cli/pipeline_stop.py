"""`ccd pipeline stop`: interrupt the running pipeline cleanly (the next run resumes it)."""

from __future__ import annotations

import typer

from cc_capture.cli.output import console, fail
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
