"""A scripted Anthropic Messages API served on 127.0.0.1 for end-to-end tests.

Claude Code talks to it through ANTHROPIC_BASE_URL. Each conversation is recognised by a
marker in its first user message; the reply is the scenario's turn number N, where N is
the number of assistant messages already in the request. Requests that carry no tools
(titles, summaries, classifiers) get a short neutral text reply.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

MODEL = "claude-opus-5-5"


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool(name: str, **input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20], "name": name, "input": input}


@dataclass
class Scenario:
    """Assistant turns for the conversation whose first user message contains `marker`; a turn may
    be a function of the request (to use what only the request says, such as the working folder)."""

    marker: str
    turns: list[list[dict[str, Any]] | Callable[[dict[str, Any]], list[dict[str, Any]]]]


@dataclass
class ScriptedAPI:
    scenarios: list[Scenario] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    # Standing in for Ollama's /v1/messages: also answer GET /api/version and /api/tags as Ollama
    # does (docs/api.md), listing these models.
    ollama_models: list[str] | None = None

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if api.ollama_models is not None and path == "/api/version":
                    return self._json(200, {"version": "0.14.0"})
                if api.ollama_models is not None and path == "/api/tags":
                    return self._json(200, {"models": [
                        {"name": m, "model": m, "modified_at": "2026-01-16T00:00:00Z", "size": 1,
                         "digest": "0" * 64, "details": {"format": "gguf", "family": "llama"}}
                        for m in api.ollama_models]})
                self._json(200, {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                if path.endswith("/count_tokens"):
                    return self._json(200, {"input_tokens": 10})
                if not path.endswith("/v1/messages"):
                    return self._json(200, {})
                req = json.loads(body or b"{}")
                api.requests.append(req)
                blocks = api.reply_for(req)
                if req.get("stream"):
                    self._stream(blocks)
                else:
                    self._json(200, _message(blocks))

            def _json(self, status: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, blocks: list[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for event, data in _sse_events(blocks):
                    self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "ScriptedAPI":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

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


def _message(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {
        "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant", "model": MODEL,
        "content": blocks, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 20},
    }


def _sse_events(blocks: list[dict[str, Any]]):
    msg = _message(blocks)
    start = dict(msg, content=[], stop_reason=None, usage={"input_tokens": 10, "output_tokens": 1})
    yield "message_start", {"type": "message_start", "message": start}
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            yield "content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}
            yield "content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": b["text"]}}
        else:
            yield "content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}}
            yield "content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": json.dumps(b["input"])}}
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None}, "usage": {"output_tokens": 20}}
    yield "message_stop", {"type": "message_stop"}
