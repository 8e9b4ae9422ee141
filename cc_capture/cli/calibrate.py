"""`ccd calibrate`: record what the installed Claude Code sends a model (cc_capture.calibrate)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

import typer
from rich.table import Table

from cc_capture.cli.output import console, fail, open_home, print_json


def calibrate(claude: Optional[str] = typer.Option(None, "--claude", help="The Claude Code command (on PATH or a "
                                                                           "path; default [compare] claude)."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON (stable snake_case keys).")) -> None:
    """Run the installed Claude Code once per system-prompt choice against a recorder on 127.0.0.1
    (no network, no API key) and store its system prompt, tool definitions and their token counts;
    datasets then train the local model on exactly those."""
    # here, not at the top: every `ccd` command imports this module
    from cc_capture.calibrate.run import CalibrationError, calibrate as run_calibration, report

    paths, settings, db = open_home()
    if claude is not None:
        settings.compare = settings.compare.model_copy(update={"claude": claude})
    try:
        with console.status("running Claude Code against the recorder", spinner="dots") if not as_json else nullcontext():
            done = run_calibration(db, settings)
    except CalibrationError as e:
        fail(str(e))
    data = report(done, settings.local.system_prompt)
    if as_json:
        return print_json(data)
    table = Table(title=f"Claude Code {data['claude_version']}: what a model is sent")
    for col in ("system prompt", "tools", "system tokens", "tool tokens", "total"):
        table.add_column(col, justify="right" if "tokens" in col or col == "total" else "left")
    for c in data["calibrations"]:
        mark = " (chosen)" if c["system_prompt"] == data["chosen"] else ""
        t = c["tokens"]
        table.add_row(c["system_prompt"] + mark, ", ".join(x["name"] for x in c["tools"]), f"{t['system']:,}",
                      f"{t['tools']:,}", f"{t['total']:,}")
    console.print(table)
    counter = data["calibrations"][0]["tokens"]
    console.print(f"tokens counted with {counter['counter']}" + (f" ({counter['note']})" if counter["note"] else ""))
