"""A scripted Anthropic Messages API served on 127.0.0.1 for end-to-end tests: cc-capture's own
recorder (`cc_capture.calibrate.recorder`) with replies from scenarios.

Claude Code talks to it through ANTHROPIC_BASE_URL. Each conversation is recognised by a
marker in its first user message; the reply is the scenario's turn number N, where N is
the number of assistant messages already in the request. Requests that carry no tools
(titles, summaries, classifiers) get a short neutral text reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from cc_capture.calibrate.recorder import MODEL, MessagesRecorder, text, tool  # noqa: F401  (the tests' vocabulary)


@dataclass
class Scenario:
    """Assistant turns for the conversation whose first user message contains `marker`; a turn may
    be a function of the request (to use what only the request says, such as the working folder)."""

    marker: str
    turns: list[list[dict[str, Any]] | Callable[[dict[str, Any]], list[dict[str, Any]]]]


class ScriptedAPI(MessagesRecorder):
    """`ollama_models`: standing in for Ollama's /v1/messages, also answer GET /api/version and
    /api/tags as Ollama does (docs/api.md), listing these models."""

    def __init__(self, scenarios: list[Scenario] | None = None, ollama_models: list[str] | None = None) -> None:
        super().__init__()
        self.scenarios = scenarios or []
        self.unmatched: list[str] = []
        self.ollama_models = ollama_models

    def answer_get(self, path: str) -> Any:
        if self.ollama_models is not None and path == "/api/version":
            return {"version": "0.14.0"}
        if self.ollama_models is not None and path == "/api/tags":
            return {"models": [{"name": m, "model": m, "modified_at": "2026-01-16T00:00:00Z", "size": 1,
                                "digest": "0" * 64, "details": {"format": "gguf", "family": "llama"}}
                               for m in self.ollama_models]}
        return {}

    def reply_for(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        messages = req.get("messages") or []
        if not req.get("tools") or not messages:
            return [text("OK")]
        first = _text_of(messages[0])
        n_assistant = sum(1 for m in messages if m.get("role") == "assistant")
        for sc in self.scenarios:
            if sc.marker in first:
                if n_assistant < len(sc.turns):
                    turn = sc.turns[n_assistant]
                    return turn(req) if callable(turn) else turn
                return [text("Nothing more to do.")]
        self.unmatched.append(first[:200])
        return [text("No scenario matched.")]


def working_folder(request: dict[str, Any]) -> str:
    """The folder Claude Code says it works in (its environment note in the conversation)."""
    notes = "\n".join(_text_of(m) for m in request.get("messages") or [])
    return re.search(r"Primary working directory: (.+)", notes).group(1).strip()


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict))
