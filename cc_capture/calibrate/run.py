"""`ccd calibrate`: run the installed Claude Code once per system-prompt choice against a recorder
on 127.0.0.1 and store what it sent (system prompt, tool definitions) with their token counts.

Claude Code is started exactly as `ccd local` starts it (`compare.launch`), its base URL at the
recorder instead of Ollama, in a temporary home (no settings, plugins, hooks or credentials of the
user: the run is not captured, and nothing of the user's shapes the prompt); the only credential
is Ollama's placeholder token, which only the recorder sees; no network is used.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cc_capture import store
from cc_capture.calibrate.recorder import MessagesRecorder
from cc_capture.compare import local
from cc_capture.compare.launch import LaunchError, claude_binary, run_print
from cc_capture.config import Settings, SystemPromptChoice
from cc_capture.datasets.conversation import estimate_tokens
from cc_capture.datasets.inference import function_tools, system_text

CALIBRATION_PROMPT = "Reply with OK."
# The user's own configuration (CLAUDE_CONFIG_DIR and the like) and capture home stay out
_FOREIGN_PREFIXES = ("CLAUDE_", "CC_CAPTURE_")
QUIET_ENV = {"DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1"}


class CalibrationError(Exception):
    """Claude Code could not be calibrated; the message says why and what to do."""


@dataclass(frozen=True)
class TokenCounts:
    system: int
    tools: int  # the definitions as Claude Code sends them (JSON)
    per_tool: dict[str, int]
    rendered_tools: int | None  # what the tools add through the training chat template (tokenizer only)
    counter: str  # "tokenizer:<model>" or "estimate:characters/4"
    note: str | None = None  # why the tokenizer was not used

    def as_json(self) -> dict[str, Any]:
        return {"system": self.system, "tools": self.tools, "total": self.system + self.tools,
                "rendered_tools": self.rendered_tools, "per_tool": self.per_tool, "counter": self.counter,
                "note": self.note}


@dataclass(frozen=True)
class Calibration:
    claude_version: str
    choice: SystemPromptChoice
    arguments: list[str]
    system: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tokens: TokenCounts = field(compare=False)


def claude_version(claude: str) -> str:
    """`claude --version`'s version number (e.g. 2.1.328)."""
    try:
        out = subprocess.run([claude, "--version"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CalibrationError(f"could not run {claude} --version ({e}): is Claude Code installed?") from e
    words = out.stdout.split()
    if out.returncode != 0 or not words:
        raise CalibrationError(f"{claude} --version failed (exit {out.returncode}): {out.stderr.strip()[:300]}")
    return words[0]


def record(settings: Settings, choice: SystemPromptChoice, timeout_s: float = 120) -> tuple[list[str], dict[str, Any]]:
    """Run Claude Code once as `ccd local` starts it for `choice` (`compare.local.invocation`: the same
    tools, system prompt, model name and environment), in `-p` mode for one turn, against a recorder;
    the flags it ran with and the first request of the conversation (the one with tools)."""
    with tempfile.TemporaryDirectory(prefix="cc-capture-calibrate-") as tmp, MessagesRecorder() as recorder:
        home, work = Path(tmp) / "home", Path(tmp) / "work"
        home.mkdir()
        work.mkdir()
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(_FOREIGN_PREFIXES) and k not in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}
        environ.update(QUIET_ENV, HOME=str(home))
        at_recorder = settings.model_copy(update={"deploy": settings.deploy.model_copy(
            update={"ollama_host": recorder.url})})
        invocation = local.invocation(at_recorder, choice, work, settings.deploy.alias, prompt=CALIBRATION_PROMPT,
                                      max_turns=1, timeout_s=timeout_s, environ=environ)
        done = run_print(invocation)
        if done.timed_out:
            raise CalibrationError(f"Claude Code did not finish within {timeout_s:.0f} s against the recorder")
        first = recorder.first_with_tools()
        if first is None:
            raise CalibrationError(f"Claude Code (exit {done.returncode}) sent no request with tools to the "
                                   f"recorder: {(done.stderr or done.stdout).strip()[:500]}")
    return _flags(invocation.argv), first


def _flags(argv: list[str]) -> list[str]:
    """The flags that shape what the model is sent (tools, system prompt, permissions), less the
    binary, the session id and the -p run's own."""
    out, skip = [], {"--session-id", "--max-turns", "--permission-prompts"}
    i = 1
    while i < len(argv):
        if argv[i] in skip:
            i += 2
            continue
        if argv[i] != "-p":
            out.append(argv[i])
        i += 1
    return out


def _tokenizer_on_disk(base_model: str) -> str | None:
    """Why the base model's tokenizer cannot be loaded here, without importing anything heavy; None
    when it may be (a folder, or a model in the Hugging Face cache, and transformers installed)."""
    if importlib.util.find_spec("transformers") is None:
        return "the train extra (transformers) is not installed"
    if Path(base_model).expanduser().is_dir():
        return None
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
               / "hub")
    if (hub / ("models--" + base_model.replace("/", "--"))).is_dir():
        return None
    return f"{base_model} is neither a folder nor in the Hugging Face cache ({hub})"


def count_tokens(views: list[tuple[str, list[dict[str, Any]]]], base_model: str) -> list[TokenCounts]:
    """Tokens of each (system prompt, tool definitions): with the base model's tokenizer when the train
    extra and the model are on this machine (in one subprocess), else estimated at 4 characters a token."""
    texts = [{"system": system} | {f"tool:{t['name']}": json.dumps(t, ensure_ascii=False) for t in tools}
             for system, tools in views]
    note = _tokenizer_on_disk(base_model)
    results: list[dict[str, Any]] | None = None
    if note is None:
        job = json.dumps({"model": base_model, "views": [
            {"texts": t, "system": system, "tools": function_tools(tools)} for t, (system, tools) in zip(texts, views)]})
        try:
            done = subprocess.run([sys.executable, "-m", "cc_capture.calibrate.tokenizer"], input=job,
                                  capture_output=True, text=True, timeout=600)
            if done.returncode == 0:
                results = json.loads(done.stdout)
            else:
                note = (done.stderr.strip().splitlines() or ["no reason given"])[-1][:300]
        except subprocess.TimeoutExpired:
            note = "it did not load within 600 s"
    out = []
    for i, t in enumerate(texts):
        if results is not None:
            counts, rendered, counter, why = results[i]["counts"], results[i]["rendered_tools"], f"tokenizer:{base_model}", None
        else:
            counts = {k: estimate_tokens(v) for k, v in t.items()}
            rendered, counter, why = None, "estimate:characters/4", f"the tokenizer of {base_model} was not used: {note}"
        per_tool = {k.removeprefix("tool:"): n for k, n in counts.items() if k.startswith("tool:")}
        out.append(TokenCounts(counts["system"], sum(per_tool.values()), per_tool, rendered, counter, why))
    return out


def calibrate(db: store.Database, settings: Settings) -> list[Calibration]:
    """Record both choices for the Claude Code `[compare] claude` names and store them (replacing
    earlier ones of this version)."""
    try:
        version = claude_version(claude_binary(settings.compare))
    except LaunchError as e:
        raise CalibrationError(str(e)) from None
    recorded = []
    for choice in SystemPromptChoice:
        arguments, request = record(settings, choice)
        system = request.get("system") or []
        system = [{"type": "text", "text": system}] if isinstance(system, str) else system
        recorded.append((choice, arguments, system, request.get("tools") or []))
    counts = count_tokens([(system_text(system), tools) for _, _, system, tools in recorded], settings.train.base_model)
    out = [Calibration(version, choice, arguments, system, tools, tokens)
           for (choice, arguments, system, tools), tokens in zip(recorded, counts)]
    with store.transaction(db) as conn:
        for c in out:
            store.save_calibration(conn, c.claude_version, c.choice.value, c.arguments, c.system, c.tools,
                                   c.tokens.as_json())
    return out


def report(calibrations: list[Calibration], chosen: SystemPromptChoice) -> dict[str, Any]:
    """`ccd calibrate --json`."""
    return {
        "claude_version": calibrations[0].claude_version if calibrations else None,
        "chosen": chosen.value,
        "recorded_at": store.iso(time.time()),
        "calibrations": [{"system_prompt": c.choice.value, "arguments": c.arguments,
                          "tools": [{"name": t["name"], "input_schema": t.get("input_schema")} for t in c.tools],
                          "tokens": c.tokens.as_json()} for c in calibrations],
    }
