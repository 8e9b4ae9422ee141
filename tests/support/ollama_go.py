"""Ollama's Go side, run for real with Go (tests/support/ollama_render): render cc-capture's Ollama
template as Ollama's text/template does, and find the tool calls in a model's output as Ollama's
parser does with that template. Skips where Go is missing, except in CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cc_capture.datasets.templates import OLLAMA_TEMPLATE

HARNESS = Path(__file__).parent / "ollama_render"


def _go(args: list[str], payload: dict[str, Any], tmp_path: Path) -> str:
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("Go is needed in CI to check the Ollama template (tests/run.sh installs golang-go)")
        pytest.skip("Go is not installed: the Ollama template check needs it")
    env = dict(os.environ, GOCACHE=str(tmp_path / "gocache"), GOPATH=str(tmp_path / "gopath"), GOFLAGS="-mod=mod")
    p = subprocess.run([go, "run", ".", *args], cwd=HARNESS, env=env, capture_output=True, text=True,
                       input=json.dumps(payload), timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


def render(conversation: list[dict[str, Any]], tools: list[dict[str, Any]], tmp_path: Path,
           template: Path = OLLAMA_TEMPLATE) -> str:
    """The prompt Ollama renders for a conversation in the dataset's (OpenAI-style) format."""
    messages = [{"role": m["role"], "content": m["content"] or "",
                 "tool_calls": [{"function": {"name": tc["function"]["name"],
                                              "arguments": tc["function"]["arguments"]
                                              if isinstance(tc["function"]["arguments"], dict)
                                              else json.loads(tc["function"]["arguments"])}}
                                for tc in m.get("tool_calls") or []]} for m in conversation]
    return _go([str(template)], {"messages": messages, "tools": tools}, tmp_path)


def detect(output: str, tools: list[dict[str, Any]], special: list[str], tmp_path: Path,
           template: Path = OLLAMA_TEMPLATE) -> dict[str, Any]:
    """{tag, preserved, seen, calls: [{name, arguments, index}], content}: what Ollama makes of a
    model's output (special tokens in `special` are dropped unless llama-server preserves them)."""
    return json.loads(_go(["detect", str(template)], {"output": output, "special": special, "tools": tools},
                          tmp_path))
