"""The `ccd` command. Each command parses arguments, calls the library and prints the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cc_capture import daemon as daemon_mod
from cc_capture import hooks_install, status as status_mod, store
from cc_capture.cli.output import ago, console, fail, human_bytes, human_duration, one_line, print_json
from cc_capture.config import ConfigError, Paths, load_settings

app = typer.Typer(
    help="cc-capture: capture Claude Code sessions into local traces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
traces_app = typer.Typer(help="List and inspect traces (one user prompt and everything the agent did for it).",
                         no_args_is_help=True)
daemon_app = typer.Typer(help="Run, start, stop and inspect the capture daemon.", no_args_is_help=True)
hooks_app = typer.Typer(help="Register the capture hooks in Claude Code's settings.json.", no_args_is_help=True)
app.add_typer(traces_app, name="traces")
app.add_typer(daemon_app, name="daemon")
app.add_typer(hooks_app, name="hooks")

JSON_OPT = typer.Option(False, "--json", help="Print JSON (stable snake_case keys) instead of a table.")


def _paths() -> Paths:
    return Paths()


def _db():
    try:
        return store.connect(_paths().db)
    except RuntimeError as e:
        fail(str(e))


# ---------------------------------------------------------------- status


@app.command()
def status(as_json: bool = JSON_OPT) -> None:
    """What was captured, the daemon's health, and any hook errors."""
    data = status_mod.collect(_paths())
    if as_json:
        return print_json(data)
    d, c = data["daemon"], data["counts"]
    if d["running"]:
        console.print(f"[green]●[/] daemon running (pid {d['pid']}, up {human_duration(d['uptime_s'])})")
    else:
        console.print("[red]●[/] daemon not running: events wait in the journal. Start it with [bold]ccd daemon start[/]")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(data["traces_by_status"].items()))
    table.add_row("traces", f"{c['traces']:,}" + (f" ({by_status})" if by_status else ""))
    table.add_row("sessions", f"{c['sessions']:,}")
    table.add_row("tool calls", f"{c['tool_calls']:,}")
    table.add_row("events", f"{c['events']:,}")
    table.add_row("quarantined", f"{c['quarantined']:,}")
    table.add_row("journal backlog", human_bytes(data["journal_backlog_bytes"]))
    table.add_row("last event", ago(data["last_event_at"]))
    table.add_row("database", f"{data['db_path']} ({human_bytes(data['db_bytes'])})")
    errors = data["hook_errors"]
    table.add_row("hook errors", "none" if not errors["count"] else
                  f"[red]{errors['count']}[/], last: {errors['recent'][-1]}")
    console.print(table)


# ---------------------------------------------------------------- traces


@traces_app.command("list")
def traces_list(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many traces, newest first."),
    session: Optional[str] = typer.Option(None, "--session", "-s", help="Only this session (id or prefix)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Traces, newest first."""
    rows = store.list_traces(_db(), limit=limit, session=session)
    if as_json:
        return print_json(rows)
    _trace_table(rows)


def _trace_table(rows: list[dict], extra: str | None = None) -> None:
    if not rows:
        console.print("No traces yet. Use Claude Code as usual; `ccd status` shows what is captured.")
        return
    table = Table()
    table.add_column("trace", style="cyan", no_wrap=True)
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("status")
    table.add_column("tools", justify="right")
    table.add_column("prompt")
    table.add_column("workflow")
    if extra:
        table.add_column(extra)
    for r in rows:
        cells = [
            r["trace_id"][:8], (r["started_at"] or "")[:19].replace("T", " "), r["status"], str(r["n_tool_calls"]),
            one_line(r["prompt"], 50), one_line(" → ".join(r["tool_sequence"]), 40),
        ]
        if extra:
            cells.append(one_line(r.get(extra), 60))
        table.add_row(*cells)
    console.print(table)


def _resolve(db, ref: str) -> str:
    ids = store.resolve_trace_id(db, ref)
    if not ids:
        fail(f"no trace matches {ref!r}; `ccd traces list` shows the ids")
    if len(ids) > 1:
        fail(f"{ref!r} matches several traces ({', '.join(i[:12] for i in ids)}…); give more of the id")
    return ids[0]


@traces_app.command("show")
def traces_show(trace_id: str = typer.Argument(..., help="Trace id (or a unique prefix)."), as_json: bool = JSON_OPT) -> None:
    """One trace with its tool calls, reasoning and final answer."""
    db = _db()
    trace = store.get_trace(db, _resolve(db, trace_id))
    if as_json:
        return print_json(trace)
    console.print(f"[bold]trace[/] {trace['trace_id']}  session {trace['session_id']}  [bold]{trace['status']}[/]")
    console.print(f"[bold]started[/] {trace['started_at']}  [bold]ended[/] {trace['ended_at'] or '-'}")
    console.print(f"[bold]prompt[/]\n{trace['prompt'] or ''}\n", highlight=False)
    for c in trace["tool_calls"]:
        indent = "    " if c["agent_id"] else ""
        if c["reasoning"]:
            console.print(f"{indent}[dim]{one_line(c['reasoning'], 120)}[/]", highlight=False)
        mark = "[red]✗[/]" if c["is_error"] else "[green]✓[/]"
        args = one_line(json.dumps(c["input"], ensure_ascii=False), 100)
        batch = f" [dim](batch {c['batch']})[/]" if c["batch"] else ""
        console.print(f"{indent}{mark} [bold]{c['name']}[/] {args}{batch}", highlight=False)
        if c["is_error"]:
            console.print(f"{indent}  [red]{one_line(c['error'], 120)}[/]", highlight=False)
    if trace["final_response"]:
        console.print(f"\n[bold]final answer[/]\n{trace['final_response']}", highlight=False)
    if trace["error"]:
        console.print(f"\n[bold red]error[/] {trace['error']}", highlight=False)


@app.command()
def search(
    text: str = typer.Argument(..., help="Words to find in prompts and final answers."),
    limit: int = typer.Option(20, "--limit", "-n", min=1),
    as_json: bool = JSON_OPT,
) -> None:
    """Full-text search over prompts and final answers."""
    rows = store.search_traces(_db(), text, limit=limit)
    if as_json:
        return print_json(rows)
    _trace_table(rows, extra="snippet")


# ---------------------------------------------------------------- ingest


@app.command()
def ingest(as_json: bool = JSON_OPT) -> None:
    """Ingest the journal once, now (the daemon does this continuously)."""
    from cc_capture.ingest.ingester import Ingester

    paths = _paths().ensure()
    if daemon_mod.info(paths).running:
        fail("the daemon is running and ingests continuously; nothing to do", code=0)
    try:
        settings = load_settings(paths)
    except ConfigError as e:
        fail(str(e))
    import fcntl

    with open(paths.lockfile, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fail("another ccd process is ingesting; try again in a moment")
        ingester = Ingester(paths, settings.capture, _db())
        result = ingester.run_pass()
        ingester.sync_transcripts(result.transcripts)
    summary = {"ingested": result.ingested, "quarantined": result.quarantined, "waiting": result.waiting}
    if as_json:
        return print_json(summary)
    console.print(f"ingested {result.ingested} events, quarantined {result.quarantined}, "
                  f"{result.waiting} still being written")


# ---------------------------------------------------------------- daemon


@daemon_app.command("run")
def daemon_run() -> None:
    """Run the daemon in the foreground (what systemd and launchd start)."""
    daemon_mod.configure_logging()
    try:
        daemon_mod.Daemon(_paths()).run()
    except (daemon_mod.DaemonError, ConfigError) as e:
        fail(str(e))


@daemon_app.command("start")
def daemon_start() -> None:
    """Start the daemon in the background (log: logs/daemon.log under the data folder)."""
    try:
        d = daemon_mod.start(_paths())
    except daemon_mod.DaemonError as e:
        fail(str(e))
    console.print(f"daemon running (pid {d.pid})")


@daemon_app.command("stop")
def daemon_stop() -> None:
    """Stop the background daemon. Hooks keep journaling; nothing is lost."""
    try:
        stopped = daemon_mod.stop(_paths())
    except daemon_mod.DaemonError as e:
        fail(str(e))
    console.print("daemon stopped" if stopped else "daemon was not running")


@daemon_app.command("status")
def daemon_status(as_json: bool = JSON_OPT) -> None:
    """Whether the daemon runs, its pid and uptime."""
    d = daemon_mod.info(_paths())
    data = {"running": d.running, "pid": d.pid, "uptime_s": d.uptime_s}
    if as_json:
        return print_json(data)
    console.print(f"running (pid {d.pid}, up {human_duration(d.uptime_s)})" if d.running else "not running")


# ---------------------------------------------------------------- hooks


SETTINGS_OPT = typer.Option(None, "--settings", help="settings.json to edit (default: ~/.claude/settings.json).")


@hooks_app.command("install")
def hooks_install_cmd(settings: Optional[Path] = SETTINGS_OPT) -> None:
    """Add the capture hooks to settings.json (idempotent; keeps your hooks; backs the file up)."""
    try:
        r = hooks_install.install(_paths(), settings)
    except hooks_install.SettingsError as e:
        fail(str(e))
    if not r.changed:
        console.print(f"hooks already installed in {r.settings_path}")
        return
    console.print(f"hooks installed in {r.settings_path} for {len(hooks_install.HOOK_EVENTS)} events")
    if r.backup:
        console.print(f"backup: {r.backup}")


@hooks_app.command("uninstall")
def hooks_uninstall_cmd(settings: Optional[Path] = SETTINGS_OPT) -> None:
    """Remove the capture hooks from settings.json (your own hooks stay)."""
    try:
        r = hooks_install.uninstall(settings)
    except hooks_install.SettingsError as e:
        fail(str(e))
    console.print(f"hooks removed from {r.settings_path}" if r.changed else f"no cc-capture hooks in {r.settings_path}")
    if r.backup:
        console.print(f"backup: {r.backup}")


@hooks_app.command("status")
def hooks_status_cmd(settings: Optional[Path] = SETTINGS_OPT, as_json: bool = JSON_OPT) -> None:
    """Which events have the capture hook in settings.json."""
    path = settings or hooks_install.settings_path()
    events = hooks_install.installed_events(path)
    missing = [e for e in hooks_install.HOOK_EVENTS if e not in events]
    if as_json:
        return print_json({"settings_path": str(path), "installed": events, "missing": missing})
    if not missing:
        console.print(f"all {len(events)} events hooked in {path}")
    else:
        console.print(f"{len(events)} of {len(hooks_install.HOOK_EVENTS)} events hooked in {path}; "
                      f"missing: {', '.join(missing)}")


def main() -> None:
    app()
