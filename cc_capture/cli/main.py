"""The `ccd` command. Each command parses arguments, calls the library and prints the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cc_capture import hooks_install, reads, store
from cc_capture.cli import export, fast, learning
from cc_capture.cli.browse import browse
from cc_capture.cli.calibrate import calibrate
from cc_capture.cli.compare import compare
from cc_capture.cli.local import local
from cc_capture.cli.doctor import doctor
from cc_capture.cli.pipeline_stop import pipeline_log, pipeline_stop
from cc_capture.cli.schedule import schedule
from cc_capture.cli.output import (console, fail, human_bytes, human_duration, one_line, open_db, open_home,
                                   open_settings, print_json)
from cc_capture.processes import interruptible
from cc_capture.records import jsonable
from cc_capture.store import Origin
from cc_capture.paths import Paths

app = typer.Typer(
    help="cc-capture: capture Claude Code sessions into local traces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
traces_app = typer.Typer(help="List and inspect traces (one user prompt and everything the agent did for it).",
                         no_args_is_help=True)
daemon_app = typer.Typer(help="Run, start, stop and inspect the capture daemon.", no_args_is_help=True)
signals_app = typer.Typer(help="Reasoning signals, behaviour vectors and quality gates.", no_args_is_help=True)
dataset_app = typer.Typer(help="Training datasets (SFT, DPO) built from qualifying traces.", no_args_is_help=True)
runs_app = typer.Typer(help="Training runs: what was trained on what, how it went.", no_args_is_help=True)
hooks_app = typer.Typer(help="Register the capture hooks in Claude Code's settings.json.", no_args_is_help=True)
app.add_typer(traces_app, name="traces")
app.add_typer(daemon_app, name="daemon")
app.add_typer(hooks_app, name="hooks")
app.add_typer(signals_app, name="signals")
app.add_typer(dataset_app, name="dataset")
app.add_typer(runs_app, name="runs")

app.command()(browse)
app.command()(calibrate)
app.command()(compare)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(local)
app.command()(schedule)

JSON_OPT = typer.Option(False, "--json", help="Print JSON (stable snake_case keys) instead of a table.")


def _print_version(value: bool) -> None:
    if value:
        import cc_capture

        console.print(f"ccd (cc-capture) {cc_capture.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(_version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                        help="Print cc-capture's version and exit.")) -> None:
    """cc-capture: capture Claude Code sessions into local traces."""


# ---------------------------------------------------------------- status


@app.command()
def status(as_json: bool = JSON_OPT) -> None:
    """What was captured, the daemon's health, and any hook errors."""
    fast.status(as_json)


@app.command()
def quarantine(limit: int = typer.Option(20, "--limit", "-n", min=1), as_json: bool = JSON_OPT) -> None:
    """Journal records that could not be ingested as they were, with the reason (samples are redacted)."""
    rows = store.quarantined(open_db(), limit)
    if as_json:
        return print_json(rows)
    if not rows:
        console.print("Nothing quarantined.")
        return
    table = Table()
    for col in ("id", "received (UTC)", "size", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), (r["received_at"] or "")[:19].replace("T", " "), human_bytes(r["size"]),
                      r["reason"])
    console.print(table)


# ---------------------------------------------------------------- traces


@traces_app.command("list")
def traces_list(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many traces, newest first."),
    session: Optional[str] = typer.Option(None, "--session", "-s", help="Only this session (id or prefix)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Traces, newest first."""
    rows = reads.trace_summaries(open_db(), limit=limit, session=session)
    if as_json:
        return print_json(rows)
    _trace_table(rows)


def _trace_table(rows: list, extra: str | None = None) -> None:
    if not rows:
        console.print("No traces yet. Use Claude Code as usual; `ccd status` shows what is captured.")
        return
    table = Table()
    table.add_column("trace", style="cyan", no_wrap=True)
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("status")
    table.add_column("origin")
    table.add_column("tools", justify="right")
    table.add_column("prompt")
    table.add_column("workflow")
    table.add_column("qualifies")
    if extra:
        table.add_column(extra)
    for r in rows:
        cells = [
            r.trace_id[:8], r.started_at.iso()[:19].replace("T", " ") if r.started_at else "", r.status,
            "[magenta]local[/]" if r.origin == Origin.LOCAL else r.origin.value, str(r.n_tool_calls),
            one_line(r.prompt, 50), one_line(" → ".join(map(str, r.tool_sequence)), 40),
            {True: "[green]yes[/]", False: "no", None: "-"}[r.qualifies],
        ]
        if extra:
            cells.append(one_line(getattr(r, extra), 60))
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
    from cc_capture.signals.vector import VECTOR_NAMES

    db = open_db()
    trace = reads.trace(db, _resolve(db, trace_id))
    trace.vector_names = VECTOR_NAMES
    if as_json:
        return print_json(trace)
    console.print(f"[bold]trace[/] {trace.trace_id}  session {trace.session_id}  [bold]{trace.status}[/]")
    console.print(f"[bold]started[/] {trace.started_at and trace.started_at.iso()}  "
                  f"[bold]ended[/] {trace.ended_at.iso() if trace.ended_at else '-'}")
    console.print(f"[bold]prompt[/]\n{trace.prompt or ''}\n", highlight=False)
    for c in trace.tool_calls:
        indent = "    " if c.agent_id else ""
        if c.reasoning:
            console.print(f"{indent}[dim]{one_line(c.reasoning, 120)}[/]", highlight=False)
        mark = "[red]✗[/]" if c.is_error else "[green]✓[/]"
        args = one_line(json.dumps(c.input, ensure_ascii=False), 100)
        batch = f" [dim](batch {c.batch})[/]" if c.batch else ""
        console.print(f"{indent}{mark} [bold]{c.name}[/] {args}{batch}", highlight=False)
        if c.is_error:
            console.print(f"{indent}  [red]{one_line(c.error, 120)}[/]", highlight=False)
    if trace.final_response:
        console.print(f"\n[bold]final answer[/]\n{trace.final_response}", highlight=False)
    if trace.error:
        console.print(f"\n[bold red]error[/] {trace.error}", highlight=False)
    sig = trace.signals
    if sig:
        verdict = "[green]qualifies[/]" if trace.qualifies else "[yellow]excluded[/]"
        console.print(f"\n[bold]signals[/] {sig['workflow_type']} workflow, {sig['exploration_depth']} exploration, "
                      f"{sig['reasoning_steps']} steps; {verdict}: {'; '.join(trace.gate_reasons)}", highlight=False)
        for label, key in (("constraints", "constraints_detected"), ("self-corrections", "self_corrections"),
                           ("validations", "validation_checks"), ("assumptions", "assumptions")):
            if sig[key]:
                console.print(f"  {label}: {len(sig[key])}", highlight=False)
    else:
        console.print("\n[dim]signals: not computed yet (the trace is open, or the daemon has not run)[/]")


@app.command()
def search(
    text: str = typer.Argument(..., help="Words to find in prompts and final answers."),
    limit: int = typer.Option(20, "--limit", "-n", min=1),
    as_json: bool = JSON_OPT,
) -> None:
    """Full-text search over prompts and final answers."""
    rows = reads.search(open_db(), text, limit=limit)
    if as_json:
        return print_json(rows)
    _trace_table(rows, extra="snippet")


# ---------------------------------------------------------------- ingest


@app.command()
def ingest(as_json: bool = JSON_OPT) -> None:
    """Ingest the journal once, now (the daemon does this continuously)."""
    from cc_capture.homelock import HomeBusy
    from cc_capture.pipeline.ingest import ingest_once

    from cc_capture import daemon as daemon_mod

    paths = Paths().ensure()
    if daemon_mod.info(paths).running:
        fail("the daemon is running and ingests continuously; nothing to do", code=0)
    settings = open_settings(paths)
    try:
        result = ingest_once(paths, settings).journal
    except HomeBusy:
        fail("another ccd process is ingesting; try again in a moment")
    except RuntimeError as e:  # the database is newer than this cc-capture
        fail(str(e))
    summary = {"ingested": result.ingested, "quarantined": result.quarantined, "waiting": result.waiting}
    if as_json:
        return print_json(summary)
    console.print(f"ingested {result.ingested} events, quarantined {result.quarantined}, "
                  f"{result.waiting} still being written")


@app.command("import")
def import_cmd(
    paths: Optional[list[Path]] = typer.Argument(None, help="Transcript files or folders (default: "
                                                 "~/.claude/projects and $CLAUDE_CONFIG_DIR/projects)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Processes that read and parse ahead "
                                          "(default: one per core, at most 4; 0: all in this process)."),
    rescan: bool = typer.Option(False, "--rescan", help="Import again the sessions whose earlier import was "
                                "redacted by older rules (hook-captured data stays)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Import Claude Code transcripts into traces (idempotent; merges with live-captured sessions)."""
    import gc
    from contextlib import ExitStack

    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cc_capture.pipeline.transcripts import import_transcripts
    from cc_capture.transcripts.bulk import default_workers
    from cc_capture.transcripts.discovery import discover

    settings = open_settings()
    roots = list(paths) if paths else settings.capture.roots()
    missing = [str(p) for p in roots if not p.exists()]
    if paths and missing:
        fail(f"no such file or folder: {', '.join(missing)}")
    roots = [p for p in roots if p.exists()]

    def size(files) -> int:
        return sum(f.stat().st_size for f in ([files.main] if files.main else []) + files.agents if f.exists())

    sessions = discover(roots)
    total = sum(size(files) for files in sessions.values())
    db = open_db()
    with ExitStack() as bars:
        columns = [TextColumn("importing"), BarColumn(), DownloadColumn(), TimeRemainingColumn()]
        importing = bars.enter_context(Progress(*columns, console=console, transient=True, disable=as_json))
        task = importing.add_task("import", total=total)

        def reading_signals(n: int):
            importing.stop()
            columns = [TextColumn("reading signals"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
            bar = bars.enter_context(Progress(*columns, console=console, transient=True, disable=as_json))
            signals_task = bar.add_task("signals", total=n)
            return lambda: bar.advance(signals_task)

        # This process lives for one import: what it has loaded (typer, pydantic, the store) stays,
        # and frozen, each full garbage collection skips it (0.07 s of CPU on 153 MB).
        gc.freeze()
        done = import_transcripts(db, sessions, settings, default_workers() if workers is None else workers, rescan,
                                  progress=lambda files: importing.advance(task, size(files)),
                                  signals_progress=reading_signals)
    stats, signals = done.stats, done.signals
    data = stats.as_dict() | {"qualifying": signals.qualifies}
    if as_json:
        print_json(data)
        raise typer.Exit(1 if stats.failed else 0)
    table = Table(title="import", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in (("files read", stats.files), ("sessions", len(stats.sessions)),
                         *((("sessions rescanned", stats.rescanned),) if rescan else ()),
                         ("new traces", stats.traces), ("new tool calls", stats.tool_calls),
                         ("lines", stats.lines), ("bytes", human_bytes(stats.bytes))):
        table.add_row(label, f"{value:,}" if isinstance(value, int) else value)
    console.print(table)
    if stats.skipped:
        skipped = Table(title="skipped lines", title_justify="left", show_header=False)
        skipped.add_column()
        skipped.add_column(justify="right")
        for reason, n in stats.skipped.most_common():
            skipped.add_row(reason, f"{n:,}")
        console.print(skipped)
    if stats.deferred:
        console.print(f"{stats.deferred} subagent files wait for their parent call (import again later)")
    for sid, error in stats.failed.items():
        console.print(f"[red]session {sid} was not imported:[/] {error} (nothing of it was stored; see the log)",
                      highlight=False)
    if stats.failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------- signals, feedback, stats


@app.command()
def rate(
    args: list[str] = typer.Argument(..., metavar="[TRACE] up|down [NOTE...]",
                                     help="Optional trace id (default: the latest completed trace), up or down, "
                                          "then an optional note."),
    note: Optional[str] = typer.Option(None, "--note", help="Why; kept with the rating."),
    as_json: bool = JSON_OPT,
) -> None:
    """Rate a trace up or down; the quality gates honour it."""
    at = next((i for i, a in enumerate(args[:2]) if a in ("up", "down")), None)
    if at is None:
        fail("usage: ccd rate [TRACE] up|down [NOTE...]  (e.g. `ccd rate up`, `ccd rate 3f2a down wrong file`)", code=2)
    rating = args[at]
    note = " ".join(filter(None, [note, " ".join(args[at + 1:])])) or None
    db = open_db()
    if at == 1:
        trace_id = _resolve(db, args[0])
    else:
        trace_id = store.latest_completed_trace(db)
        if trace_id is None:
            fail("no completed trace to rate yet")
    from cc_capture.signals.runner import compute

    with store.transaction(db) as conn:
        store.feedback_set(conn, trace_id, rating, note)
    compute(db, [trace_id], open_settings().gates)
    trace = reads.trace(db, trace_id)
    data = {"trace_id": trace_id, "rating": rating, "note": note, "qualifies": trace.qualifies,
            "gate_reasons": trace.gate_reasons}
    if as_json:
        return print_json(data)
    console.print(f"rated {trace_id[:8]} {rating} ({one_line(trace.prompt, 60)}); "
                  f"{'qualifies for training' if trace.qualifies else 'excluded from training'}", highlight=False)


@signals_app.command("recompute")
def signals_recompute(
    everything: bool = typer.Option(False, "--all", help="Every closed trace, not only those of older extractors."),
    as_json: bool = JSON_OPT,
) -> None:
    """Re-run the signal extractor (and the quality gates) over stored traces."""
    from rich.progress import Progress

    from cc_capture.signals import EXTRACTOR_VERSION
    from cc_capture.signals.runner import compute, stale

    db = open_db()
    gates = open_settings().gates
    ids = stale(db, everything)
    with Progress(console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("extracting signals", total=len(ids))
        result = compute(db, ids, gates, progress=lambda: progress.advance(task))
    data = {"extractor_version": EXTRACTOR_VERSION, "computed": result.computed, "qualifies": result.qualifies,
            "failed": result.failed}
    if as_json:
        return print_json(data)
    console.print(f"signals recomputed for {result.computed} traces with extractor v{EXTRACTOR_VERSION}: "
                  f"{result.qualifies} qualify" + (f", {result.failed} failed (see the log)" if result.failed else ""))


@app.command()
def stats(as_json: bool = JSON_OPT) -> None:
    """Distributions: workflow types, exploration depths, tools, gate reasons."""
    data = store.signal_stats(open_db())
    if as_json:
        return print_json(data)
    for title, key in (("traces", "traces"), ("workflow types", "workflow_types"),
                       ("exploration depths", "exploration_depths"), ("tools", "tools"),
                       ("gate reasons", "gate_reasons")):
        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column()
        table.add_column(justify="right")
        for name, n in data[key].items():
            table.add_row(name, f"{n:,}")
        console.print(table)
    q = data["qualifying"]
    console.print(f"qualify: {q['qualifies']:,}  excluded: {q['excluded']:,}  pending: {q['pending']:,}")


# ---------------------------------------------------------------- datasets and training


def _build_dataset(dpo: bool, include_synthetic: bool, extra_pairs: list | None = None):
    from cc_capture.datasets.build import DatasetError, build

    paths, settings, db = open_home()
    root = paths.datasets
    try:
        return build(db, root, settings.datasets, settings.local.system_prompt, dpo=dpo, include_synthetic=include_synthetic,
                     extra_pairs=extra_pairs)
    except DatasetError as e:
        fail(str(e))
    except OSError as e:
        fail(f"could not write the dataset under {root}: {e}; nothing of it was kept")


@dataset_app.command("build")
def dataset_build(
    dpo: bool = typer.Option(False, "--dpo", help="Preference pairs for DPO instead of SFT conversations."),
    include_synthetic: bool = typer.Option(False, "--include-synthetic", help="Also bootstrap (synthetic) traces."),
    divergences_from: Optional[str] = typer.Option(None, "--divergences-from", metavar="RUN",
                                                   help="With --dpo: add pairs where this SFT run's model diverges "
                                                        "from Claude (needs the train extra)."),
    max_prompts: int = typer.Option(50, "--max-prompts", min=1, help="Prompts to try for divergences."),
    as_json: bool = JSON_OPT,
) -> None:
    """Build a training dataset (JSONL + a Hugging Face `datasets` folder + manifest.json)."""
    extra = None
    if divergences_from:
        from cc_capture.records import Phase, RunStatus

        if not dpo:
            fail("--divergences-from goes with --dpo", code=2)
        run = reads.run(open_db(), divergences_from)
        if run is None or run.status != RunStatus.COMPLETED or run.phase != Phase.SFT:
            fail(f"{divergences_from!r} is not a completed SFT run; `ccd runs list` shows them")
        from cc_capture.train.divergence import find

        with console.status("generating with the local model to find divergences", spinner="dots"):
            extra = find(run, Path(run.dataset_path), max_prompts=max_prompts)
    result = _build_dataset(dpo, include_synthetic, extra)
    data = {"path": str(result.path), "counts": result.counts, "manifest": result.manifest}
    if as_json:
        return print_json(data)
    m = result.manifest
    console.print(f"{m.kind} dataset: {result.counts['train']} train, {result.counts['eval']} eval examples "
                  f"from {m.traces} traces ({m.duplicates_dropped} duplicates dropped) → {result.path}")
    if m.compare_pairs is not None or m.spent_sessions:
        pairs = m.compare_pairs or {"train": 0, "eval": 0}
        console.print(f"`ccd compare`: {pairs['train']} train, {pairs['eval']} eval preference pairs; "
                      f"{m.spent_sessions} sessions spent for evaluation (their pairs are trained on)")
    view = m.inference
    if view.source == "calibration":
        console.print(f"system prompt ({view.system_prompt}) and tools: Claude Code {view.claude_version}'s, "
                      f"as the local model gets them ({len(m.tools)} tools)")
    else:
        console.print("[yellow]no calibration: the compact system prompt and tool schemas inferred from the calls "
                      "seen, not those the local model gets in Claude Code; run `ccd calibrate`, then build again[/]")


@app.command()
def bootstrap(
    traces: int = typer.Option(..., "--traces", min=1, max=10_000, help="How many synthetic traces."),
    project: Path = typer.Option(Path("."), "--project", help="The project whose files make them concrete."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = JSON_OPT,
) -> None:
    """Synthetic traces for a cold start, from workflow templates over your project's files
    (read-only). Marked synthetic: never evaluated on; trained on only with --include-synthetic."""
    from cc_capture.datasets.bootstrap import BootstrapError, generate, store_traces
    from cc_capture.signals.runner import compute_pending

    try:
        made = generate(project, traces, seed)
    except BootstrapError as e:
        fail(str(e))
    db = open_db()
    with store.transaction(db) as conn:
        session_id = store_traces(conn, made, project.resolve())
    signals = compute_pending(db, open_settings().gates)
    workflows: dict[str, int] = {}
    for t in made:
        workflows[t.workflow] = workflows.get(t.workflow, 0) + 1
    data = {"session_id": session_id, "created": len(made), "project": str(project.resolve()),
            "workflows": workflows, "qualifying": signals.qualifies}
    if as_json:
        return print_json(data)
    console.print(f"{len(made)} synthetic traces from {len(workflows)} workflows over {project.resolve()} "
                  f"(session {session_id}); {signals.qualifies} qualify. They train only with "
                  "`ccd dataset build --include-synthetic`.", highlight=False)


@app.command()
def train(
    phase: str = typer.Option("sft", "--phase", help="sft, dpo or grpo."),
    base_model: Optional[str] = typer.Option(None, "--base-model", help="A local folder or a model name."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after N optimizer steps."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="A folder from `ccd dataset build`."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue an interrupted run from its checkpoint."),
    from_run: Optional[str] = typer.Option(None, "--from-run", metavar="RUN",
                                           help="DPO, GRPO: the SFT run to start from (default: the latest)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Train (in a subprocess, with checkpoints and a log) and record the run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cc_capture.train import launch
    from cc_capture.train.runs import Phase, RunDir, RunStatus

    try:
        chosen = Phase.parse(phase)
    except ValueError as e:
        fail(str(e), code=2)
    paths = Paths()
    db = open_db(paths)
    try:
        run_id = launch.resumable(db, resume) if resume else launch.create(
            db, paths, open_settings(paths), chosen, base_model=base_model, max_steps=max_steps, dataset=dataset,
            from_run=from_run)
    except launch.LaunchError as e:
        fail(str(e))
    interruptible()
    columns = [TextColumn("training {task.fields[phase]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn()]
    run = None
    with Progress(*columns, console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("train", total=None, phase=reads.run(db, run_id).phase.value, loss="-")
        try:
            for event in launch.run(db, paths, run_id):
                if isinstance(event, launch.Step):
                    bar.update(task, completed=event.step, total=event.max_steps,
                               loss=f"{event.loss:.4f}" if event.loss is not None else "-")
                elif isinstance(event, launch.Finished):
                    run = event.run
        except KeyboardInterrupt:
            pass  # the worker was stopped and recorded the run as interrupted
    run = run or reads.run(db, run_id)
    data = {"run_id": run_id, "phase": run.phase, "status": run.status, "backend": run.backend,
            "metrics": run.metrics, "artifacts": run.artifacts, "error": run.error}
    if as_json:
        print_json(data)
    else:
        console.print(f"run {run_id} ({run.phase.value}, {run.backend}): [bold]{run.status.value}[/]", highlight=False)
        for k, v in run.metrics.items():
            console.print(f"  {k}: {v}", highlight=False)
        if run.error:
            console.print(f"[red]{run.error}[/] (log: {RunDir.of(paths, run_id).log})", highlight=False)
    if run.status != RunStatus.COMPLETED:
        raise typer.Exit(1)


@runs_app.command("list")
def runs_list(limit: int = typer.Option(20, "--limit", "-n", min=1), as_json: bool = JSON_OPT) -> None:
    """Training runs, newest first."""
    rows = reads.runs(open_db(), limit)
    if as_json:
        return print_json(rows)
    if not rows:
        console.print("No training runs yet: `ccd train --phase sft` starts one.")
        return
    table = Table()
    for col in ("run", "phase", "status", "backend", "created (UTC)", "train loss", "steps"):
        table.add_column(col)
    for r in rows:
        m = r.metrics
        table.add_row(r.run_id, r.phase.value, r.status.value, r.backend or "-", r.created_at.iso()[:19].replace("T", " "),
                      f"{m['train_loss']:.4f}" if m.get("train_loss") is not None else "-", str(m.get("steps", "-")))
    console.print(table)


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."), as_json: bool = JSON_OPT) -> None:
    """One run: config, dataset manifest, metrics, artifacts."""
    run = reads.run(open_db(), run_id)
    if run is None:
        fail(f"no run matches {run_id!r}; `ccd runs list` shows them")
    if as_json:
        return print_json(run)
    console.print_json(json.dumps(jsonable(run)))


# ---------------------------------------------------------------- daemon


@daemon_app.command("run")
def daemon_run() -> None:
    """Run the daemon in the foreground (what systemd and launchd start)."""
    fast.daemon_run()


@daemon_app.command("start")
def daemon_start() -> None:
    """Start the daemon in the background (log: logs/daemon.log under the data folder)."""
    from cc_capture import daemon as daemon_mod

    try:
        d = daemon_mod.start(Paths())
    except daemon_mod.DaemonError as e:
        fail(str(e))
    console.print(f"daemon running (pid {d.pid})")
    for warning in d.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


@daemon_app.command("stop")
def daemon_stop() -> None:
    """Stop the background daemon. Hooks keep journaling; nothing is lost."""
    from cc_capture import daemon as daemon_mod

    try:
        stopped = daemon_mod.stop(Paths())
    except daemon_mod.DaemonError as e:
        fail(str(e))
    console.print("daemon stopped" if stopped else "daemon was not running")


@daemon_app.command("status")
def daemon_status(
    as_json: bool = JSON_OPT,
    wait: bool = typer.Option(False, "--wait", help="Wait until it is ready (one systemd or launchd started); "
                              "exit 1 with its reason if it dies first."),
) -> None:
    """Whether the daemon runs, its pid and uptime, warnings, or why its last start failed."""
    from cc_capture import daemon as daemon_mod, status as status_mod

    if wait:
        try:
            daemon_mod.wait_ready(Paths())
        except daemon_mod.DaemonError as e:
            fail(str(e))
    d = daemon_mod.info(Paths())
    data = status_mod.daemon_dict(d)
    if as_json:
        return print_json(data)
    console.print(f"running (pid {d.pid}, up {human_duration(d.uptime_s)})" if d.running else "not running")
    for warning in d.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if d.error:
        console.print(f"[red]last start failed:[/] {d.error}", highlight=False)


# ---------------------------------------------------------------- hooks


SETTINGS_OPT = typer.Option(None, "--settings", help="settings.json to edit (default: ~/.claude/settings.json).")


@hooks_app.command("install")
def hooks_install_cmd(settings: Optional[Path] = SETTINGS_OPT) -> None:
    """Add the capture hooks to settings.json (idempotent; keeps your hooks; backs the file up)."""
    try:
        r = hooks_install.install(Paths(), settings)
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


app.command()(doctor)
learning.register(app)
export.register(app)
learning.pipeline_app.command("stop")(pipeline_stop)
learning.pipeline_app.command("log")(pipeline_log)


def main() -> None:
    app()
