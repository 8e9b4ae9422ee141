"""The fixed prompts a GGUF is verified on: the first conversations of the model's held-out eval
split (each up to its first assistant turn) when its dataset is known, else a built-in set shaped
like Claude Code's (a system prompt, tools, a user request). Deterministic: same model, same prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _tool(name: str, description: str, **props: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": sorted(props)}}}


TOOLS = [_tool("Read", "Read a file", file_path="string"), _tool("Bash", "Run a shell command", command="string"),
         _tool("Grep", "Search file contents", pattern="string", path="string")]
SYSTEM = "You are Claude Code, an agent that works in the user's repository with tools."
BUILT_IN = [
    "Why does the test in tests/test_store.py fail?",
    "Find where the config file is read.",
    "Run the test suite and tell me what breaks.",
    "Add a --json option to the status command.",
    "What does this repository do?",
    "Rename the function load_settings to read_settings everywhere.",
]


def built_in() -> list[dict[str, Any]]:
    return [{"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}], "tools": TOOLS}
            for text in BUILT_IN]


def from_dataset(dataset_dir: Path, count: int) -> list[dict[str, Any]]:
    """The first `count` eval conversations of a dataset folder, each cut before its first assistant turn."""
    prompts = []
    with open(dataset_dir / "eval.jsonl") as fh:
        for line in fh:
            row = json.loads(line)
            messages = row.get("messages") or []
            first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))
            if first and any(m.get("role") == "user" for m in messages[:first]):
                tools = row.get("tools")
                prompts.append({"messages": messages[:first],
                                "tools": json.loads(tools) if isinstance(tools, str) else tools or []})
            if len(prompts) == count:
                break
    return prompts


def prompts_for(dataset_dir: str | Path | None, count: int = 8) -> list[dict[str, Any]]:
    if dataset_dir and (Path(dataset_dir) / "eval.jsonl").is_file():
        found = from_dataset(Path(dataset_dir), count)
        if found:
            return found
    return built_in()[:count]
