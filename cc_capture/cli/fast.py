"""`ccd`'s entry point, and the two commands met most often: `ccd status` (a user, many times a
day) and `ccd daemon run` (the service manager; it stays resident). Both run without loading
typer, click and the other commands, which cost more than `ccd status` has in all (goal: under
0.15 s) and would stay in the daemon's memory (goal: under 50 MB). Every other command, and
`--help`, goes to the typer app in cli/main.py; `ccd import` first starts its worker processes,
whose start-up then overlaps the typer app's and the settings'.
"""

from __future__ import annotations

import sys

from typing import Any

from cc_capture.cli.output import ago, fail, human_bytes, human_duration, local_clock, print_json


def status(as_json: bool) -> None:
    """What was captured, the daemon's health, and any hook errors."""
    from cc_capture import status as status_mod
    from cc_capture.paths import Paths

    try:
        data = status_mod.collect(Paths())
    except RuntimeError as e:
        fail(str(e))
    if as_json:
        return print_json(data)
    from cc_capture.cli.term import Terminal

    console = Terminal()
    d, c = data["daemon"], data["counts"]
    if d["running"]:
        dot = "[yellow]●[/]" if d["warnings"] or not d["ready"] else "[green]●[/]"
        console.print(f"{dot} daemon running (pid {d['pid']}, up {human_duration(d['uptime_s'])})"
                      + ("" if d["ready"] else ", starting"))
    else:
        console.print("[red]●[/] daemon not running: events wait in the journal. Start it with [bold]ccd daemon start[/]")
        if d["error"]:
            console.print(f"  [red]last start failed:[/] {d['error']}")
    for warning in d["warnings"]:
        console.print(f"  [yellow]warning:[/] {warning}")
    disk = data["disk"]
    if disk and disk["full"]:
        console.print(f"  [red]disk full:[/] {human_bytes(disk['free_bytes'])} free where the journal is "
                      f"({disk['path']}): hooks cannot record events; free space")
    elif disk and disk["low"]:
        console.print(f"  [yellow]disk low:[/] {human_bytes(disk['free_bytes'])} free where the journal is "
                      f"({disk['path']})")
    _print_hooks_warning(console, data["hooks"])
    table: list[tuple[str, str]] = []
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(data["traces_by_status"].items()))
    table.append(("traces", f"{c['traces']:,}" + (f" ({by_status})" if by_status else "")))
    q = data["qualifying"]
    table.append(("qualifying", f"{q['qualifies']:,} qualify for training, {q['excluded']:,} excluded"
                  + (f", {q['pending']:,} pending" if q["pending"] else "")))
    table.append(("sessions", f"{c['sessions']:,}"))
    table.append(("tool calls", f"{c['tool_calls']:,}"))
    table.append(("events", f"{c['events']:,}"))
    table.append(("quarantined", f"{c['quarantined']:,}"))
    table.append(("journal backlog", human_bytes(data["journal_backlog_bytes"])
                  + (f" ({data['journal_incomplete']} records incomplete)" if data["journal_incomplete"] else "")))
    table.append(("last event", ago(data["last_event_at"])))
    table.append(("database", f"{data['db_path']} ({human_bytes(data['db_bytes'])})"))
    errors = data["hook_errors"]
    table.append(("hook errors", "none" if not errors["count"] else
                  f"[red]{errors['count']}[/], last: {errors['recent'][-1]}"))
    run = data["last_run"]
    table.append(("last training run", "none yet" if run is None else
                  f"{run['run_id']} ({run['phase']}): {run['status']}"
                  + (f", train loss {run['train_loss']:.4f}" if run["train_loss"] is not None else "")
                  + (f" — {run['error']}" if run["error"] else "")))
    champion = data["champion"]
    table.append(("champion model", "none yet (`ccd eval` scores the base model and the latest run)"
                  if champion is None else f"v{champion['version']}, behavioural similarity "
                  + ("-" if champion["behavioural_similarity"] is None else f"{champion['behavioural_similarity']:.4f}")
                  + f", promoted {ago(champion['promoted_at'])}"))
    dep = data["deployed"]
    table.append(("deployed model", "none yet" if dep is None else
                  f"{dep['tag']} as {dep['alias']} at {dep['host']}, {ago(dep['deployed_at'])}; Ollama: "
                  + ("[green]answers[/]" if dep["ollama"] == "reachable" else f"[red]{dep['ollama']}[/]")))
    table.append(("learning", learning_line(data["learning"], d["running"])))
    console.table(table)


def _print_hooks_warning(console: Any, hooks: dict) -> None:
    """Capture is silently off when settings.json lost our hooks (`ccd hooks uninstall`, a tool rewriting it)."""
    from cc_capture.cli.term import escape

    total = len(hooks["installed"]) + len(hooks["missing"])
    fix = "run [bold]ccd hooks install[/] (or enable the cc-capture plugin)"
    if hooks["error"]:
        console.print(f"[red]●[/] hooks: {escape(hooks['error'])}")
    elif hooks["missing_scripts"]:
        console.print(f"[red]●[/] hooks point at a missing script ({escape(', '.join(hooks['missing_scripts']))}): "
                      "nothing is captured; run [bold]ccd hooks install[/]")
    elif hooks["plugin_enabled"]:
        console.print("[green]●[/] hooks registered by the cc-capture plugin")
    elif not hooks["installed"]:
        console.print(f"[red]●[/] no capture hooks in {escape(hooks['settings_path'])}: nothing is captured; {fix}")
    elif hooks["missing"]:
        console.print(f"[yellow]●[/] hooks registered for {len(hooks['installed'])} of {total} events in "
                      f"{escape(hooks['settings_path'])}; missing: {', '.join(hooks['missing'])}; {fix}")
    else:
        console.print(f"[green]●[/] hooks registered for all {total} events")


def learning_line(learning: dict[str, Any], daemon_running: bool) -> str:
    """When the model learns next and why not now, in one line."""
    if learning["enabled"] is False:
        return "off ([learning] enabled = false)"
    if not daemon_running:
        return "the daemon is not running: no training on its own (ccd daemon start)"
    if learning["decision"] is None:
        return "first check pending"
    pipeline = learning["last_pipeline"]
    if learning["decision"] == "run" or (pipeline and pipeline["outcome"] == "running"):
        return "training now (see `ccd schedule`)"
    return f"next check {local_clock(learning['next_check_at'])}, waiting for: " + "; ".join(learning["waiting_for"])


def daemon_run() -> None:
    """Run the daemon in the foreground (what systemd and launchd start)."""
    from cc_capture import daemon
    from cc_capture.config import ConfigError

    daemon.configure_logging()
    try:
        daemon.Daemon().run()
    except (daemon.DaemonError, ConfigError) as e:
        fail(str(e))


def start_import_workers(args: list[str]) -> None:
    """`ccd import ARGS` starts its worker processes before typer and the settings load, so that
    their start-up overlaps this process's (pipeline.import_worker): `--workers` of them, else
    bulk.default_workers(); none for `--help`, a `--workers` that is no number (typer then says
    so), or files and folders named (else Claude Code's: a `transcript_roots` configured in the
    settings is not read here) that hold too little not imported yet to import in parallel. What
    is read wrong here costs only time: the import starts the workers it needs, and ends those it
    does not."""
    from pathlib import Path

    from cc_capture.claude_format import transcript_roots
    from cc_capture.paths import Paths
    from cc_capture.pipeline import import_worker
    from cc_capture.transcripts import bulk

    if "--help" in args:
        return
    value, paths, options = None, [], True
    for i, arg in enumerate(args):
        if not options or not arg.startswith("-"):
            if i == 0 or args[i - 1] != "--workers" or not options:
                paths.append(Path(arg))
        elif arg == "--":
            options = False
        elif arg == "--workers":
            value = args[i + 1] if i + 1 < len(args) else ""
        elif arg.startswith("--workers="):
            value = arg.split("=", 1)[1]
    if not paths:  # the import reads the configured roots: Claude Code's, unless configured otherwise
        paths = transcript_roots()
    if value is not None and not value.isdigit():
        return
    offsets = {} if "--rescan" in args else bulk.imported_offsets(Paths().db)  # --rescan reads some from the start
    if not bulk.may_need_workers(paths, offsets):
        return
    import_worker.start_ahead(bulk.default_workers() if value is None else int(value))


def main() -> None:
    import sqlite3

    try:
        args = sys.argv[1:]
        if args[:1] == ["status"] and set(args[1:]) <= {"--json"}:
            return status("--json" in args)
        if args == ["daemon", "run"]:
            return daemon_run()
        if args[:1] == ["import"]:
            start_import_workers(args[1:])
        from cc_capture.cli.main import main as full

        full()
    except sqlite3.DatabaseError as e:  # a damaged or unreadable database: what to do, not a traceback
        from cc_capture.health import recovery_advice
        from cc_capture.paths import Paths

        db = Paths().db
        damaged = any(w in str(e) for w in ("malformed", "not a database", "corrupt"))
        fail(f"the database {db} " + (f"is damaged ({e}): {recovery_advice(db)}" if damaged
                                      else f"could not be used: {e}"))
