"""`ccd browse`: the store in the browser, served by Datasette in a subprocess.

Datasette is an optional extra (`cc-capture[browse]`) and is never imported here: this module
only starts `python -m datasette` from the same environment, with the metadata, canned queries,
templates and the small plugin of this package, bound to 127.0.0.1, and stops it again.

Read-only, while the daemon keeps writing: Datasette opens a database file that may change
with `?mode=ro` (not `immutable`, which would let SQLite skip locks and read torn pages of a
live WAL file), and the plugin sets `PRAGMA query_only` on every connection it gets, so not
even a write canned query could change the store.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cc_capture import store
from cc_capture.browse.metadata import build_metadata
from cc_capture.config import Paths
from cc_capture.loopback import HOST, free_port

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
PLUGINS = HERE / "plugins"
INSTALL_HINT = ("Datasette is not installed in this environment: run ./install.sh again (it installs Datasette "
                "unless given --no-browse), or `pip install 'cc-capture[browse]'` where ccd is installed")


class BrowseError(Exception):
    """Datasette could not be started; the message says why and what to do."""


def datasette_installed() -> bool:
    return importlib.util.find_spec("datasette") is not None


def check_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise BrowseError(f"port {port} is in use on {HOST}: choose another with --port, "
                                  "or leave --port out to get a free one") from None
            raise BrowseError(f"cannot use port {port} on {HOST}: {e.strerror}") from None


def datasette_command(db_path: Path, port: int, metadata_path: Path) -> list[str]:
    """The Datasette command line: one database, this package's templates and plugin, loopback only."""
    return [
        sys.executable, "-m", "datasette", "serve", str(db_path),
        "--host", HOST, "--port", str(port),
        "--metadata", str(metadata_path),
        "--template-dir", str(TEMPLATES),
        "--plugins-dir", str(PLUGINS),
        "--setting", "default_page_size", "50",
        "--setting", "sql_time_limit_ms", "5000",
        "--setting", "truncate_cells_html", "300",
    ]


@dataclass
class Server:
    """A running Datasette; `stop()` (or leaving the `with` block) ends it."""

    url: str
    process: subprocess.Popen
    log: IO[bytes]
    _workdir: tempfile.TemporaryDirectory
    _keep_open: object = field(repr=False)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._keep_open.conn.close()
        self.log.close()
        self._workdir.cleanup()


def _log_tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


def serve(paths: Paths, port: int | None = None, extra_metadata: dict | None = None,
          startup_timeout_s: float = 60.0) -> Server:
    """Start Datasette over the store and return once it answers.

    `extra_metadata` is merged into the generated metadata (the tests add a write query to
    prove that writes are refused).
    """
    if not datasette_installed():
        raise BrowseError(INSTALL_HINT)
    if port is None:
        port = free_port()
    else:
        check_port(port)
    # A connection held open for as long as Datasette runs: it brings the schema up to date and
    # keeps the WAL files in place, which a read-only (`mode=ro`) reader cannot create itself.
    db = store.connect(paths.db)
    metadata = build_metadata(paths.db)
    if extra_metadata:
        for name, database in extra_metadata.get("databases", {}).items():
            metadata["databases"].setdefault(name, {}).setdefault("queries", {}).update(database.get("queries", {}))
    old = os.umask(0o077)
    try:
        workdir = tempfile.TemporaryDirectory(prefix="browse-", dir=paths.home)
        metadata_path = Path(workdir.name) / "metadata.json"
        metadata_path.write_text(json.dumps(metadata, indent=2))
        log = open(Path(workdir.name) / "datasette.log", "w+b")
    finally:
        os.umask(old)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(datasette_command(paths.db, port, metadata_path), stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    server = Server(f"http://{HOST}:{port}/", process, log, workdir, db)
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if process.poll() is not None:
            tail = _log_tail(log)
            server.stop()
            raise BrowseError(f"Datasette stopped at start (exit {process.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(server.url + "-/versions.json", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            tail = _log_tail(log)
            server.stop()
            raise BrowseError(f"Datasette did not answer on {server.url} within {startup_timeout_s:.0f}s:\n{tail}")
        time.sleep(0.2)
