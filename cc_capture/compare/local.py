"""`ccd local`: Claude Code on the deployed local model, in the user's folder, so a user can try it in
one command. It starts as `ccd calibrate` records it (`invocation`): all six tools the model is
trained with (Read, Grep, Glob, Bash, Edit, Write; edits accepted inside the working folder), the
system prompt of `[local] system_prompt`, Ollama's `/v1/messages` as the endpoint. The session is
registered as the local model's before it starts, so its capture never counts as training data."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from cc_capture import store
from cc_capture.compare.launch import LaunchError, LocalInvocation, check_ollama, local_invocation
from cc_capture.config import Settings, SystemPromptChoice
from cc_capture.datasets.inference import system_prompt_flag
from cc_capture.deploy import records


def invocation(settings: Settings, choice: SystemPromptChoice, cwd: Path, tag: str, *, prompt: str | None = None,
               max_turns: int | None = None, timeout_s: float | None = None, extra_args: Sequence[str] = (),
               environ: Mapping[str, str] | None = None) -> LocalInvocation:
    """Claude Code on model `tag` the way the local model runs for the user, with `choice`'s system prompt."""
    return local_invocation(settings.deploy, settings.compare, cwd, prompt=prompt, tag=tag, allow_edits=True,
                            max_turns=max_turns, timeout_s=timeout_s, system_prompt=system_prompt_flag(choice),
                            extra_args=extra_args, environ=environ)


def deployed_tag(db: store.Database, settings: Settings) -> str:
    """The version tag `[deploy]`'s alias points at, or LaunchError saying how to get one."""
    now = records.current(db, settings.deploy.alias)
    if now is None:
        raise LaunchError(f"no model is deployed as {settings.deploy.alias}: train and deploy one (`ccd pipeline "
                          "run`, or `ccd deploy VERSION` for a model that passed its gate)")
    return now.tag


def start(db: store.Database, settings: Settings, cwd: Path, extra_args: Sequence[str] = ()) -> LocalInvocation:
    """The interactive session to run: the deployed model is checked in Ollama first (reachable, new
    enough, the model there), and the session registered as local."""
    tag = deployed_tag(db, settings)
    check_ollama(settings.deploy, tag)
    run = invocation(settings, settings.local.system_prompt, cwd, tag, extra_args=extra_args)
    with store.transaction(db) as conn:
        store.register_local_session(conn, run.session_id, tag)
    return run
