"""`ccd browse`: the store in the browser (Datasette, read-only, on 127.0.0.1)."""

from __future__ import annotations

import signal
import webbrowser
from typing import Optional

import typer

from cc_capture.cli.output import console, fail
from cc_capture.config import Paths


def browse(
    port: Optional[int] = typer.Option(None, "--port", "-p", min=1, max=65535,
                                       help="Port on 127.0.0.1 (default: a free one)."),
    no_open: bool = typer.Option(False, "--no-open", help="Print the URL; do not open a browser."),
) -> None:
    """Browse traces, models and evaluations in the browser (Datasette; read-only; this machine only)."""
    from cc_capture.browse import BrowseError, serve

    try:
        server = serve(Paths().ensure(), port)
    except (BrowseError, RuntimeError) as e:
        fail(str(e))
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # stopped by a signal: Datasette stops too
    with server:
        console.print(f"cc-capture is browsable at [bold]{server.url}[/] (read-only, this machine only); "
                      "Ctrl-C stops it.", highlight=False)
        if not no_open and not webbrowser.open(server.url):
            console.print("(no browser could be opened here: open the URL yourself)")
        try:
            code = server.process.wait()
        except KeyboardInterrupt:
            code = 0
    if code:
        fail(f"Datasette stopped (exit {code})")
