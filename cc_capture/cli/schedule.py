"""`ccd schedule`: the learning scheduler's last decisions; and the one `ccd status` line about it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from cc_capture import store
from cc_capture.cli.output import console, fail, print_json
from cc_capture.config import Paths
from cc_capture.schedule import state


def _local(iso_ts: str | None) -> str:
    return datetime.fromisoformat(iso_ts).astimezone().strftime("%a %H:%M") if iso_ts else "-"


def learning_line(learning: dict[str, Any] | None, daemon_running: bool) -> str:
    """When the model learns next and why not now, in one line."""
    if learning is None:
        return "unknown: the settings are invalid (see `ccd doctor` or config.toml)"
    if not learning["enabled"]:
        return "off ([learning] enabled = false)"
    if not daemon_running:
        return "the daemon is not running: no training on its own (ccd daemon start)"
    if learning["decision"] is None:
        return "first check pending"
    pipeline = learning["last_pipeline"]
    if learning["decision"] == "run" or (pipeline and pipeline["outcome"] == "running"):
        return "training now (see `ccd schedule`)"
    return f"next check {_local(learning['next_check_at'])}, waiting for: " + "; ".join(learning["waiting_for"])


def schedule(limit: int = typer.Option(20, "--limit", "-n", min=1),
             as_json: bool = typer.Option(False, "--json", help="Print JSON (stable snake_case keys).")) -> None:
    """The learning scheduler's last decisions (run or wait) with their reasons, newest first."""
    try:
        db = store.connect(Paths().db)
    except RuntimeError as e:
        fail(str(e))
    rows = state.recent(db, limit)
    if as_json:
        return print_json(rows)
    if not rows:
        console.print("No decisions yet: the daemon checks every [learning] check_interval_min (ccd daemon start).")
        return
    table = Table()
    for col in ("at", "decision", "reasons", "pipeline"):
        table.add_column(col)
    for r in rows:
        pipeline = "" if r["pid"] is None else f"pid {r['pid']}" + (
            ", running" if r["ended_at"] is None else f", exit {r['exit_code']}")
        table.add_row(_local(r["at"]), r["decision"], "\n".join(r["reasons"]), pipeline)
    console.print(table)
