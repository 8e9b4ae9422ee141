"""Start-up footprint as a user meets it: `ccd status`, the CLI and the daemon never load pandas,
numpy, torch or transformers (the train extra installs them: sqlite-utils used to pull pandas
and numpy into every `ccd status` and the daemon), and `ccd status` and `ccd daemon run` start
without typer, click or pydantic (cli/fast.py). Times and memory are measured, not asserted, by
benchmarks/footprint.py."""

import os
import signal
import subprocess
import sys

from cc_capture import daemon, store
from conftest import emit, wait_for

HEAVY = {"pandas", "numpy", "torch", "transformers", "pyarrow", "scipy"}
CLI_STACK = {"typer", "click", "pydantic"}


def loaded(importtime_stderr: str) -> set[str]:
    """Top-level packages a `python -X importtime` run imported."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "package":
                names.add(name.split(".")[0])
    return names


def run_importtime(*args: str) -> set[str]:
    p = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return loaded(p.stderr)


def test_importing_the_cli_and_the_daemon_loads_no_heavy_library(paths):
    mods = run_importtime("-c", "import cc_capture.cli.main, cc_capture.cli.fast, cc_capture.daemon, "
                                "cc_capture.pipeline.ingest, cc_capture.status")
    assert "cc_capture" in mods and "typer" in mods  # the spy sees what the full CLI loads
    assert not mods & HEAVY, mods & HEAVY


def test_status_starts_without_the_cli_stack(paths):
    """Nor rich: its console and table cost more than `ccd status` may take (cli/term.py draws its table)."""
    for args in (["status"], ["status", "--json"]):
        mods = run_importtime("-m", "cc_capture", *args)
        assert "sqlite3" in mods
        assert not mods & (HEAVY | CLI_STACK | {"rich"}), (args, mods & (HEAVY | CLI_STACK | {"rich"}))


def test_status_table_styles_only_a_terminal():
    from cc_capture.cli.term import escape, render

    markup = f"[red]1[/], last: [bold]{escape('[x] in /a[b]')}[/] and [] stays"
    assert render(markup, color=False) == "1, last: [x] in /a[b] and [] stays"
    assert render(markup, color=True) == "\x1b[31m1\x1b[0m, last: \x1b[1m[x] in /a[b]\x1b[0m and [] stays"


def test_the_running_daemon_loads_no_heavy_library_nor_the_cli_stack(paths):
    """A real daemon process that ingests an event and computes its trace's signals."""
    err = paths.home / "daemon-importtime.log"
    with open(err, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "cc_capture", "daemon", "run"],
                                stdout=subprocess.DEVNULL, stderr=fh, env=dict(os.environ, CC_CAPTURE_HOME=str(paths.home)))
    try:
        wait_for(lambda: daemon.info(paths).running, message="daemon up")
        base = {"session_id": "s", "cwd": "/w", "prompt_id": "p"}
        emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt": "Explain the flaky test"})
        emit(paths, {**base, "hook_event_name": "Stop", "last_assistant_message": "A race in setup."})

        def signals_done() -> bool:
            db = store.connect(paths.db)
            try:
                return db.execute("SELECT count(*) FROM signals").fetchone()[0] == 1
            finally:
                db.conn.close()

        wait_for(signals_done, message="event ingested and its signals computed")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    mods = loaded(err.read_text())
    assert "watchdog" in mods and "cc_capture" in mods
    assert not mods & (HEAVY | {"typer", "click"}), mods & (HEAVY | {"typer", "click"})
