"""`ccd local [CLAUDE ARGS...]`: Claude Code on the deployed local model (cc_capture.compare.local);
the process becomes Claude Code, so the terminal, Ctrl-C and the exit status are its own."""

from __future__ import annotations

import os

import typer

from cc_capture.cli.output import err_console, fail, open_home


def local(ctx: typer.Context) -> None:
    """Start Claude Code on the deployed local model through Ollama's /v1/messages, in this folder,
    with the tools and system prompt it was trained with; arguments after `local` go to Claude Code
    (e.g. `ccd local -p "explain this repo"`). The session is captured as the local model's."""
    from cc_capture.compare.launch import LaunchError
    from cc_capture.compare.local import start

    paths, settings, db = open_home()
    try:
        run = start(db, settings, os.getcwd(), ctx.args)
    except LaunchError as e:
        fail(str(e))
    db.conn.close()
    err_console.print(f"Claude Code on {run.tag} at {settings.deploy.host()} ([local] system_prompt = "
                      f"{settings.local.system_prompt.value}; session {run.session_id})", highlight=False, markup=False,
                      soft_wrap=True)
    os.execve(run.argv[0], run.argv, run.env)
