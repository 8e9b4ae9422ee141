"""The real Claude Code on the local model, started one way for `ccd compare` and `ccd local`.

Ollama serves Anthropic's Messages API at `/v1/messages` (since 0.14: streaming and tools; no
`tool_choice`, token counting or prompt caching), so `claude` with `ANTHROPIC_BASE_URL` at Ollama and
`--model TAG` runs the deployed model in the same harness as Claude: same tools, same hooks, same
capture. Ollama's documentation sets `ANTHROPIC_AUTH_TOKEN=ollama` (required by Claude Code, ignored
by Ollama) and an empty `ANTHROPIC_API_KEY`.

`local_invocation` only builds the command (argv, environment, folder); `run_print` runs a `-p`
invocation with its time limit. The system prompt the model gets is the caller's choice
(`system_prompt`: `--system-prompt` replaces Claude Code's own; None keeps Claude Code's).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from cc_capture.config import CompareSettings, DeploySettings

READ_ONLY_TOOLS = ("Read", "Grep", "Glob")
EDIT_TOOLS = ("Bash", "Edit", "Write")
MESSAGES_API_VERSION = (0, 14, 0)  # the first Ollama that serves Anthropic's Messages API
AUTH_TOKEN = "ollama"  # Ollama's docs: Claude Code needs one, Ollama ignores it

# Variables that would send Claude Code to another endpoint, credential or model than ours.
_FOREIGN_PREFIXES = ("ANTHROPIC_", "AWS_BEARER_TOKEN_BEDROCK")
_FOREIGN = {"CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY", "CLAUDE_CODE_OAUTH_TOKEN",
            "CLAUDE_CODE_SUBAGENT_MODEL", "CLAUDE_CODE_MAX_CONTEXT_TOKENS"}
# Every model Claude Code may ask for on its own (side requests, subagents) is the local one:
# Ollama has no `claude-haiku-…` to answer them with.
_MODEL_VARIABLES = ("ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL",
                    "ANTHROPIC_SMALL_FAST_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL")


class LaunchError(Exception):
    """Claude Code cannot be started as asked; the message says what to do."""


@dataclass(frozen=True)
class LocalInvocation:
    """One start of Claude Code on the local model: run `argv` in `cwd` with `env`."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    tag: str  # the Ollama model it talks to
    session_id: str  # passed as --session-id: the capture knows the session before its first event
    timeout_s: float | None  # -p runs are stopped after this; None for an interactive session
    stdin: str | None = None  # the -p prompt, given on stdin (no argument-length limit, no leading-dash trap)


@dataclass(frozen=True)
class LocalRun:
    """How a `-p` invocation ended."""

    returncode: int | None  # None when it was stopped at its time limit
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float


def claude_binary(compare: CompareSettings) -> str:
    """The Claude Code executable `[compare] claude` names (on PATH or a path)."""
    found = shutil.which(compare.claude)
    if not found:
        raise LaunchError(f"Claude Code ({compare.claude!r}) was not found: install it "
                          "(`npm install -g @anthropic-ai/claude-code`) or set `claude` under [compare] in config.toml")
    return found


def check_ollama(deploy: DeploySettings, tag: str | None = None) -> str:
    """Before Claude Code is started on it: the Ollama at `[deploy]`'s host answers, is new enough to
    serve `/v1/messages`, and has the model `tag` (default the alias). Its version, or LaunchError
    with the cause and what to do (Claude Code itself would retry a dead endpoint for minutes)."""
    from cc_capture.deploy.server import DeployError, OllamaServer, parse_version

    tag = tag or deploy.alias
    try:
        with OllamaServer(deploy.host(), timeout_s=10.0) as server:
            version = server.version()
            if (0, 0, 0) < parse_version(version) < MESSAGES_API_VERSION:
                need = ".".join(map(str, MESSAGES_API_VERSION))
                raise LaunchError(f"Ollama {version} at {deploy.host()} has no Anthropic Messages API (/v1/messages "
                                  f"came in {need}): upgrade Ollama to {need} or newer")
            if tag not in server.tags():
                raise LaunchError(f"the model {tag} is not in Ollama at {deploy.host()}: deploy one (`ccd deploy`) "
                                  "or name another with --model")
    except DeployError as e:
        raise LaunchError(str(e)) from None
    return version


def local_invocation(deploy: DeploySettings, compare: CompareSettings, cwd: Path, *, prompt: str | None = None,
                     tag: str | None = None, allow_edits: bool = False, max_turns: int | None = None,
                     timeout_s: float | None = None, system_prompt: str | None = None,
                     session_id: str | None = None, resume: str | None = None, extra_args: Sequence[str] = (),
                     environ: Mapping[str, str] | None = None) -> LocalInvocation:
    """Claude Code on Ollama's `/v1/messages` with model `tag` (default `[deploy] model_name:latest`).

    With `prompt` it runs `-p` with the prompt on stdin, non-interactive, stopped after `max_turns` turns and
    `timeout_s` seconds (defaults from `[compare]`), and a tool that would need a permission is
    refused (nobody is there to answer). Without, it is an interactive session (no limits).
    Tools: Read, Grep and Glob; with `allow_edits` also Bash, Edit and Write, file edits accepted
    in the working folder only (`acceptEdits`: outside it they need a permission), and Bash
    commands only those Claude Code runs without asking (read-only ones).

    The session is always a new one with a known id (`session_id`, made when not given), so it can
    be registered as local before it starts; `resume` continues session RESUME in it
    (`--resume RESUME --fork-session`)."""
    tag = tag or deploy.alias
    session_id = session_id or str(uuid.uuid4())
    tools = READ_ONLY_TOOLS + (EDIT_TOOLS if allow_edits else ())
    argv = [claude_binary(compare), "--model", tag, "--session-id", session_id, "--tools", ",".join(tools),
            "--allowedTools", ",".join(READ_ONLY_TOOLS), "--strict-mcp-config"]
    if resume is not None:
        argv += ["--resume", resume, "--fork-session"]
    if allow_edits:
        argv += ["--permission-mode", "acceptEdits"]
    if system_prompt is not None:
        argv += ["--system-prompt", system_prompt]
    if prompt is not None:
        argv += ["-p", "--max-turns", str(max_turns or compare.max_turns), "--permission-prompts", "none"]
    argv += list(extra_args)
    env = {k: v for k, v in (os.environ if environ is None else environ).items()
           if not k.startswith(_FOREIGN_PREFIXES) and k not in _FOREIGN}
    env.update({"ANTHROPIC_BASE_URL": deploy.host(), "ANTHROPIC_AUTH_TOKEN": AUTH_TOKEN, "ANTHROPIC_API_KEY": "",
                # the context Ollama gives the model ([deploy] num_ctx), so Claude Code compacts in time
                # (it assumes 1M tokens for a model name it does not know)
                "CLAUDE_CODE_MAX_CONTEXT_TOKENS": str(deploy.num_ctx),
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                # no attribution header: it would put a per-prompt fingerprint first in the system
                # prompt, which the model is not trained with (`ccd calibrate` records without it)
                "CLAUDE_CODE_ATTRIBUTION_HEADER": "0"})
    env.update(dict.fromkeys(_MODEL_VARIABLES, tag))
    return LocalInvocation(argv=argv, env=env, cwd=Path(cwd), tag=tag, session_id=session_id,
                           timeout_s=(timeout_s or compare.timeout_s) if prompt is not None else None, stdin=prompt)


def run_print(invocation: LocalInvocation) -> LocalRun:
    """Run a `-p` invocation to its end or its time limit. It runs in a process group of its own,
    so that a time limit or Ctrl-C stops Claude Code and everything it started."""
    started = time.monotonic()
    proc = subprocess.Popen(invocation.argv, cwd=invocation.cwd, env=invocation.env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(invocation.stdin or "", timeout=invocation.timeout_s)
        return LocalRun(proc.returncode, out, err, False, time.monotonic() - started)
    except subprocess.TimeoutExpired:
        out, err = _stop(proc)
        return LocalRun(None, out, err, True, time.monotonic() - started)
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM to the group, SIGKILL after 10 s; what it printed until then."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return "", ""
