"""Read the complete lines of a JSONL file that start in a byte range.

Claude Code appends to a transcript while we read it, so a trailing line without its newline
is left for the next read. A range that starts inside a line skips to the next one: the range
before it reads that line to its end, so ranges split anywhere cover each line exactly once.
Reading goes a block at a time: memory is bounded by the block plus the longest line, and a line
longer than LONG_LINE_BYTES (a 200 MB pasted prompt) is never held whole: its long strings are cut
while it streams in, as live capture cuts the strings of an event over `max_event_bytes`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

from cc_capture.claude_format import DEFAULT_MAX_OUTPUT_CHARS, TRUNCATION_MARK

BLOCK = 1 << 20
SKIP_BLOCK = 64 << 10  # most lines end within this
LONG_LINE_BYTES = 8 << 20  # CaptureSettings.max_event_bytes' default


_WHOLE_ESCAPES = re.compile(rb"(?:[^\\]|\\u[0-9a-fA-F]{4}|\\[^u])*")  # the longest prefix cut at no escape
_HIGH_SURROGATE_END = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\Z")


def _whole(kept: bytes) -> bytes:
    """The start of a JSON string's content cut anywhere, backed off to whole escapes, no lone high
    surrogate at the end, and whole UTF-8 characters."""
    kept = kept[: _WHOLE_ESCAPES.match(kept).end()]
    if _HIGH_SURROGATE_END.search(kept):
        kept = kept[:-6]
    for k in range(1, min(4, len(kept)) + 1):  # an incomplete UTF-8 character at the end
        b = kept[-k]
        if b < 0x80:
            break
        if b >= 0xC0:
            if (2 if b < 0xE0 else 3 if b < 0xF0 else 4) > k:
                kept = kept[:-k]
            break
    return kept


class _StringCutter:
    """JSON text fed in pieces, each string longer than `limit` bytes cut there (at a character and
    escape boundary) with the visible truncation marker: the output stays small whatever comes in."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.out = bytearray()
        self.in_string = False
        self.start = 0  # where the current string's content starts in `out`
        self.seen = 0  # bytes of the current string's content seen
        self.escaped = False  # the piece before ended with a backslash that escapes the next byte

    def feed(self, data: bytes) -> None:
        if self.escaped:  # the second byte of an escape cut between pieces
            self._content(data[:1])
            data, self.escaped = data[1:], False
        # Escaped backslashes and quotes made into two harmless bytes each (same length): in this
        # view, a string ends at the next quote. Outside strings JSON has no backslashes, so one
        # pass over the piece pairs every string's escapes as a parser would.
        plain = data.replace(b"\\\\", b"\0\0").replace(b'\\"', b"\0\0")
        i = 0
        while i < len(data):
            j = plain.find(b'"', i)
            if not self.in_string:
                if j < 0:
                    self.out += data[i:]
                    return
                self.out += data[i : j + 1]
                self.in_string, self.start, self.seen = True, len(self.out), 0
            elif j < 0:
                self._content(data[i:])
                self.escaped = plain.endswith(b"\\")
                return
            else:
                self._content(data[i:j])
                self._close()
            i = j + 1

    def _content(self, piece: bytes) -> None:
        room = self.limit - self.seen
        if room > 0:
            self.out += piece[:room]
        self.seen += len(piece)

    def _close(self) -> None:
        if self.seen > self.limit:
            kept = _whole(bytes(self.out[self.start :]))
            mark = json.dumps(TRUNCATION_MARK.format(self.seen))[1:-1].encode()
            self.out[self.start :] = kept + mark
        self.out += b'"'
        self.in_string = False

    def text(self) -> bytes:
        return bytes(self.out)


def lines_between(path: Path, start: int, stop: int,
                  max_string_bytes: int = DEFAULT_MAX_OUTPUT_CHARS) -> Iterator[tuple[bytes, int]]:
    """Yield (line without its newline, offset just past it) for each complete line that starts
    at or after `start` (a line boundary or not) and before `stop`. A line over LONG_LINE_BYTES
    comes with its strings cut to `max_string_bytes`."""
    with open(path, "rb") as fh:
        if start > 0:  # skip the end of the line `start` falls in (just the newline if it is a boundary)
            fh.seek(start - 1)
            while True:  # a piece at a time: that line may be hundreds of MB
                block = fh.read(SKIP_BLOCK)
                nl = block.find(b"\n")
                if nl >= 0:
                    fh.seek(nl + 1 - len(block), 1)
                    break
                if not block:
                    return
        pos = fh.tell()  # where the next line starts
        head: list[bytes] = []  # the start of that line, read but not ended yet
        head_len = 0
        cutter: _StringCutter | None = None  # set while a long line streams through
        while pos < stop:
            block = fh.read(BLOCK)
            if not block:
                return
            last = block.rfind(b"\n")
            if last < 0:
                head_len += len(block)
                if cutter is not None:
                    cutter.feed(block)
                else:
                    head.append(block)
                    if head_len > LONG_LINE_BYTES:
                        cutter = _StringCutter(max_string_bytes)
                        cutter.feed(b"".join(head))
                        head = []
                continue
            if cutter is not None:  # the long line ends in this block
                first = block.find(b"\n")
                cutter.feed(block[:first])
                pos += head_len + first + 1
                yield cutter.text(), pos
                cutter, head, head_len = None, [], 0
                block, last = block[first + 1 :], last - first - 1
                if last < 0:
                    head, head_len = [block], len(block)
                    continue
            head.append(block[:last])
            lines = b"".join(head).split(b"\n")
            head = [block[last + 1 :]]
            head_len = len(head[0])
            for line in lines:
                if pos >= stop:
                    return
                pos += len(line) + 1
                yield line, pos
