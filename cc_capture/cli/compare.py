"""`ccd compare`: a thin skin over cc_capture.pipeline.compare (replay, score, store) and
cc_capture.compare.records (past comparisons)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from cc_capture.cli.output import console, fail, one_line, open_home, print_json

_SHOWN = ("tool_sequence_similarity", "first_tool_agreement", "argument_agreement", "answer_similarity",
          "behaviour_cosine", "clean_ending")
_SHORT = {"tool_sequence_similarity": "sequence", "first_tool_agreement": "first tool",
          "argument_agreement": "arguments", "answer_similarity": "answer", "behaviour_cosine": "cosine",
          "clean_ending": "clean"}


def compare(
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1,
                                        help="How many held-out prompts to replay (\\[compare] limit)."),
    model: Optional[str] = typer.Option(None, "--model", metavar="TAG",
                                        help="The Ollama model (default: \\[deploy] model_name:latest)."),
    allow_edits: bool = typer.Option(False, "--allow-edits",
                                     help="Also give the local model Bash, Edit and Write (inside the worktree)."),
    list_: bool = typer.Option(False, "--list", help="Past comparisons and how the scores moved model to model."),
    show: Optional[str] = typer.Option(None, "--show", metavar="COMPARE_ID", help="One past comparison again."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (stable snake_case keys) instead of tables."),
) -> None:
    """Replay Claude's held-out prompts with the local model inside Claude Code (a temporary git worktree
    each, read-only tools unless --allow-edits), compare each pair, keep the divergences for DPO."""
    from cc_capture.compare import records
    from cc_capture.pipeline.compare import CompareError, comparison, run_compare

    paths, settings, db = open_home()
    if list_:
        past = records.history(db)
        return print_json(past) if as_json else _history_table(past)
    if show:
        report = comparison(db, show)
        if report is None:
            fail(f"no comparison {show!r}; `ccd compare --list` shows them")
        return print_json(report) if as_json else _report_tables(report)
    db.conn.close()
    with console.status("", spinner="dots") if not as_json else nullcontext() as spinner:
        def on_item(n: int, total: int, prompt: str) -> None:
            if spinner is not None:
                spinner.update(f"replaying {n + 1}/{total} with {escape(model or settings.deploy.alias)}: "
                               f"{escape(one_line(prompt, 60))}")
        try:
            report = run_compare(paths, settings, limit, model, allow_edits, on_item)
        except CompareError as e:
            fail(str(e))
    return print_json(report) if as_json else _report_tables(report)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _report_tables(report: dict[str, Any]) -> None:
    table = Table(title=f"{report['compare_id']}: {report['model']} against Claude", title_justify="left")
    for name in ("prompt", "claude's tools", "local tools", "local run", *(_SHORT[s] for s in _SHOWN), "diverged at"):
        table.add_column(name, justify="right" if name in _SHORT.values() else "left")
    for item in report["items"]:
        local = item["local"]
        table.add_row(one_line(item["prompt"], 40), one_line(" → ".join(item["claude"]["tool_sequence"]), 30),
                      one_line(" → ".join(local["tool_sequence"]), 30),
                      local["status"] if local["status"] == "ok" else f"[yellow]{local['status']}[/]",
                      *(_fmt(item["scores"].get(s)) for s in _SHOWN),
                      "-" if item["divergence"] is None else f"step {item['divergence'] + 1}")
    console.print(table)
    summary = Table(title="summary (mean, 95% bootstrap interval over prompts, prompts behind it)",
                    title_justify="left")
    for name in ("score", "mean", "interval", "n"):
        summary.add_column(name, justify="left" if name == "score" else "right")
    for name, figure in report["summary"]["scores"].items():
        low_high = figure["interval"]
        summary.add_row(name, _fmt(figure["mean"]), "-" if not low_high else f"[{low_high[0]:.2f}, {low_high[1]:.2f}]",
                        str(figure["n"]))
    console.print(summary)
    console.print(f"{report['dpo_pairs']} preference pair(s) from divergences "
                  "(`ccd dataset build --dpo` includes them)")


def _history_table(past: list[dict[str, Any]]) -> None:
    if not past:
        console.print("No comparison yet: `ccd compare` runs one.")
        return
    table = Table(title="comparisons, newest first (change: since the comparison before)", title_justify="left")
    for name in ("compare id", "model", "started (UTC)", "status", "prompts", *(_SHORT[s] for s in _SHOWN),
                 "pairs", "sequence change"):
        table.add_column(name)
    for c in past:
        change = (c["change"] or {}).get("tool_sequence_similarity")
        table.add_row(c["compare_id"], c["model"], (c["started_at"] or "")[:19].replace("T", " "), c["status"],
                      str(c["items"]), *(_fmt(c["means"].get(s)) for s in _SHOWN), str(c["dpo_pairs"]),
                      "-" if change is None else f"{change:+.2f}")
    console.print(table)
