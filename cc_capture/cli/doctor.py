"""`ccd doctor`: the checks of `cc_capture.doctor`, as a table or JSON; exit 1 when one fails."""

from __future__ import annotations

from contextlib import nullcontext

import typer
from rich.markup import escape
from rich.table import Table

from cc_capture.cli.output import console, print_json

MARKS = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]", "skip": "[dim]skip[/]"}


def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON (stable snake_case keys).")) -> None:
    """Check everything capture depends on (hooks, daemon, journal, database, disk, file modes,
    transcripts, Claude Code version, training stack, Ollama) and say what to do."""
    from cc_capture import doctor as doctor_lib  # here: every `ccd` command imports this module

    with console.status("checking", spinner="dots") if not as_json else nullcontext():
        checks = doctor_lib.run()
    data = doctor_lib.report(checks)
    if as_json:
        print_json(data)
    else:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column()
        table.add_column(style="bold")
        table.add_column()
        for c in checks:
            table.add_row(MARKS[c.status.value], c.name,
                          escape(c.message) + (f"\n[cyan]→ {escape(c.action)}[/]" if c.action else ""))
        console.print(table, highlight=False)
        failed = [c.name for c in checks if c.status is doctor_lib.Status.FAIL]
        console.print(f"[red]{len(failed)} failed: {', '.join(failed)}[/]" if failed else "[green]all good[/]")
    if not data["ok"]:
        raise typer.Exit(1)
