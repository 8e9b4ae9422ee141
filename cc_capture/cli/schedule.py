"""`ccd schedule`: the learning scheduler's last decisions (its `ccd status` line is in cli/fast.py)."""

from __future__ import annotations

import typer
from rich.table import Table

from cc_capture.cli.output import console, local_clock, open_db, print_json
from cc_capture import learning_state


def schedule(limit: int = typer.Option(20, "--limit", "-n", min=1),
             as_json: bool = typer.Option(False, "--json", help="Print JSON (stable snake_case keys).")) -> None:
    """The learning scheduler's last decisions (run or wait) with their reasons, newest first."""
    rows = learning_state.recent(open_db(), limit)
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
        table.add_row(local_clock(r["at"]), r["decision"], "\n".join(r["reasons"]), pipeline)
    console.print(table)
