"""A Messages API on 127.0.0.1 that records every request Claude Code sends and answers it.

`ccd calibrate` points Claude Code's `ANTHROPIC_BASE_URL` at it to see exactly what a model gets
(system prompt, tool definitions) without any network or API key; the end-to-end tests script
their replies through `reply_for`. It speaks the protocol Claude Code uses: `POST /v1/messages`,
streamed (server-sent events) or not, and `count_tokens`.
"""

from __future__ import annotations

import json
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator

from cc_capture.loopback import LoopbackServer

MODEL = "claude-opus-5-5"


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool(name: str, **input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20], "name": name, "input": input}


class MessagesRecorder(LoopbackServer):
    """Serves on 127.0.0.1 (a free port) while used as a context manager; `requests` holds every
    `/v1/messages` body received, in order. Each is answered with `reply_for(request)`'s blocks."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self._json(200, recorder.answer_get(self.path.split("?")[0]))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                if path.endswith("/count_tokens"):
                    return self._json(200, {"input_tokens": 10})
                if not path.endswith("/v1/messages"):
                    return self._json(200, {})
                req = json.loads(body or b"{}")
                recorder.requests.append(req)
                blocks = recorder.reply_for(req)
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

        super().__init__(Handler)

    def reply_for(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        """The assistant's content blocks for a request: a short text, which ends the turn."""
        return [text("OK")]

    def answer_get(self, path: str) -> Any:
        """The JSON a GET of `path` is answered with (Claude Code's own GETs need nothing)."""
        return {}

    def first_with_tools(self) -> dict[str, Any] | None:
        """The first request of the main conversation (side requests for titles and the like carry no tools)."""
        return next((r for r in self.requests if r.get("tools") and r.get("messages")), None)


def _message(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {
        "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant", "model": MODEL,
        "content": blocks, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 20},
    }


def _sse_events(blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
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
