"""A scripted Anthropic Messages API served on 127.0.0.1 for end-to-end tests: cc-capture's own
recorder (`cc_capture.calibrate.recorder`) with replies from scenarios.

Claude Code talks to it through ANTHROPIC_BASE_URL. Each conversation is recognised by a
marker in its first user message; the reply is the scenario's turn number N, where N is
the number of assistant messages already in the request. Requests that carry no tools
(titles, summaries, classifiers) get a short neutral text reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cc_capture.calibrate.recorder import MODEL, MessagesRecorder, text, tool  # noqa: F401  (the tests' vocabulary)


@dataclass
class Scenario:
    """Assistant turns for the conversation whose first user message contains `marker`."""

    marker: str
    turns: list[list[dict[str, Any]]]


class ScriptedAPI(MessagesRecorder):
    def __init__(self, scenarios: list[Scenario] | None = None) -> None:
        super().__init__()
        self.scenarios = scenarios or []
        self.unmatched: list[str] = []

    def __enter__(self) -> "ScriptedAPI":
        super().__enter__()
        return self

    def reply_for(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        messages = req.get("messages") or []
        if not req.get("tools") or not messages:
            return [text("OK")]
        first = _text_of(messages[0])
        n_assistant = sum(1 for m in messages if m.get("role") == "assistant")
        for sc in self.scenarios:
            if sc.marker in first:
                if n_assistant < len(sc.turns):
                    return sc.turns[n_assistant]
                return [text("Nothing more to do.")]
        self.unmatched.append(first[:200])
        return [text("No scenario matched.")]


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict))
