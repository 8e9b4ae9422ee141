"""`ccd eval`, `ccd models list|show` and `ccd pipeline run`: thin skins over cc_capture.pipeline."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cc_capture.cli.output import console, fail, open_home, print_json

JSON_OPT = typer.Option(False, "--json", help="Print JSON (stable snake_case keys) instead of a table.")
models_app = typer.Typer(help="The model registry: versions, scores, status.", no_args_is_help=True)
pipeline_app = typer.Typer(help="The learning pipeline: dataset, SFT, DPO, evaluate, gate.", no_args_is_help=True)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def eval_cmd(
    target: Optional[str] = typer.Argument(None, metavar="[RUN_ID|VERSION|base]",
                                           help="What to evaluate (default: the latest completed training run)."),
    against: str = typer.Option("champion", "--against", metavar="champion|VERSION",
                                help="Compare with the champion (the decision is applied) or a version (only compared)."),
    max_items: Optional[int] = typer.Option(None, "--max-items", min=1, help="Cap on eval items (\\[evaluate] max_items)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Score a model against held-out Claude traces, compare it with the champion, and gate it."""
    from cc_capture.evaluate.evaluator import EvaluationError
    from cc_capture.evaluate.metrics import COMPOSITE, METRICS
    from cc_capture.pipeline.challenge import ChallengeError, challenge, resolve

    paths, settings, db = open_home()
    columns = [TextColumn("generating with {task.fields[label]}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True, disable=as_json) as bar:
        tasks: dict[str, int] = {}

        def on_progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total, label=label)
            bar.update(tasks[label], completed=done)

        try:
            model = resolve(db, paths, settings, target)
            report = challenge(db, paths, settings, model, against, max_items, on_progress)
        except (ChallengeError, EvaluationError) as e:
            fail(str(e))
    data = report.as_json()
    if as_json:
        return print_json(data)
    s = data["eval_set"]
    console.print(f"v{report.model.version} ({', '.join(report.model.runs) or 'base ' + report.model.base_model}) "
                  f"on eval set {s['hash'][:12]}: {s['items']} items from {s['traces']} held-out traces",
                  highlight=False)
    table = Table()
    versus = f"v{report.against.version}" if report.against else None
    for col in ("metric", f"v{report.model.version}", "95% interval", "items", versus or "", "difference"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name in (COMPOSITE, *METRICS):
        ours = data["metrics"][name]
        theirs = data["against"]["metrics"][name] if versus else None
        interval = data["intervals"][name]
        table.add_row(name, _fmt(ours), f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "-",
                      str(data["counts"][name]), _fmt(theirs) if versus else "",
                      f"{ours - theirs:+.4f}" if ours is not None and theirs is not None else "")
    console.print(table)
    decision = data["decision"]
    if decision:
        verdict = ("[green]promoted[/]" if decision["promote"] else "[yellow]rejected[/]") if decision["applied"] else (
            "would be promoted" if decision["promote"] else "would be rejected")
        console.print(f"decision: {verdict} (p = {decision['p_value']:.4f})")
        for reason in decision["reasons"]:
            console.print(f"  - {reason}", highlight=False)


@models_app.command("list")
def models_list(as_json: bool = JSON_OPT) -> None:
    """Every model version, its status and its behavioural similarity."""
    from cc_capture.deploy import records
    from cc_capture.evaluate import registry

    _, settings, db = open_home()
    tags = records.tags(db, settings.deploy.alias)
    rows = [registry.as_json(db, m) | {"tags": tags.get(m.version, [])} for m in registry.listing(db)]
    if as_json:
        return print_json(rows)
    if not rows:
        console.print("No models yet: `ccd eval` registers the latest training run and the base model.")
        return
    table = Table()
    for col in ("version", "status", "runs", "base model", "behavioural similarity", "Ollama tags", "created (UTC)",
                "why"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"v{r['version']}", r["status"], ", ".join(r["runs"]) or "(base)", r["base_model"],
                      _fmt(r["behavioural_similarity"]), ", ".join(r["tags"]) or "-",
                      (r["created_at"] or "")[:19].replace("T", " "), "; ".join(r["reasons"])[:80])
    console.print(table)


@models_app.command("show")
def models_show(version: str = typer.Argument(..., help="A version (3 or v3)."), as_json: bool = JSON_OPT) -> None:
    """One model: where it came from, its weights, its scores on each eval set, its history."""
    from cc_capture.evaluate import registry

    _, _, db = open_home()
    model = registry.get(db, int(version.lstrip("v"))) if version.lstrip("v").isdigit() else None
    if model is None:
        fail(f"no model version {version!r}; `ccd models list` shows them")
    data = registry.as_json(db, model, detail=True)
    if as_json:
        return print_json(data)
    console.print(f"[bold]v{model.version}[/] {model.status.value}  base {model.base_model}  "
                  f"runs {', '.join(model.runs) or '-'}", highlight=False)
    console.print(f"weights {model.path} (sha256 {model.sha256[:16]}…)", highlight=False)
    for s in data["scores"]:
        console.print(f"  {s['at'][:19]} eval set {s['eval_set_hash'][:12]} ({s['items']} items): "
                      f"behavioural similarity {_fmt(s['behavioural_similarity'])}", highlight=False)
    for q, f in model.artifacts.get("gguf", {}).items():
        e = f.get("evaluation") or {}
        scored = (f"behavioural similarity {_fmt(e['metrics']['behavioural_similarity'])} on {e['items']} items "
                  f"(HF model {_fmt(e['hf_metrics']['behavioural_similarity'])}), valid_call_rate "
                  f"{_fmt(e['metrics']['valid_call_rate'])}") if e else "not evaluated"
        console.print(f"  GGUF {q}: {scored}; next-token agreement "
                      f"{_fmt((f.get('verification') or {}).get('next_token_agreement'))} (sha256 {f['sha256'][:12]}…)",
                      highlight=False)
    for e in data["events"]:
        console.print(f"  {e['at'][:19]} {e['status']}: {'; '.join(e['reasons'])}", highlight=False)


@pipeline_app.command("run")
def pipeline_run(as_json: bool = JSON_OPT) -> None:
    """Dataset → SFT → DPO (when there are enough pairs) → evaluate → gate; resumes an interrupted one."""
    from cc_capture.pipeline import run as pipeline

    paths, settings, db = open_home()
    with console.status("pipeline", spinner="dots") if not as_json else nullcontext() as status:
        try:
            result = pipeline.run(db, paths, settings,
                                  on_step=None if as_json else lambda name: status.update(f"pipeline: {name}"))
        except pipeline.PipelineBusy as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted; the next `ccd pipeline run` resumes it from its last finished step", 130)
    data = result.as_json()
    if as_json:
        print_json(data)
    else:
        console.print(f"pipeline {data['pipeline_id']}: [bold]{data['outcome']}[/]"
                      + (f" (model v{data['model_version']})" if data["model_version"] else ""), highlight=False)
        for step in data["steps"]:
            console.print(f"  {step['name']}: {step['status']} {step['detail'] or ''}", highlight=False)
    if data["outcome"] == "failed":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
    app.add_typer(models_app, name="models")
    app.add_typer(pipeline_app, name="pipeline")
