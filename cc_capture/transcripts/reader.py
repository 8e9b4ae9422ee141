"""Read the complete lines of a JSONL file that start in a byte range.

Claude Code appends to a transcript while we read it, so a trailing line without its newline
is left for the next read. A range that starts inside a line skips to the next one: the range
before it reads that line to its end, so ranges split anywhere cover each line exactly once.
Reading goes a block at a time: memory is bounded by the block plus the longest line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

BLOCK = 1 << 20


def lines_between(path: Path, start: int, stop: int) -> Iterator[tuple[bytes, int]]:
    """Yield (line without its newline, offset just past it) for each complete line that starts
    at or after `start` (a line boundary or not) and before `stop`."""
    with open(path, "rb") as fh:
        if start > 0:
            fh.seek(start - 1)
            fh.readline()  # the end of the line `start` falls in (just the newline if it is a boundary)
        pos = fh.tell()  # where the next line starts
        head: list[bytes] = []  # the start of that line, read but not ended yet
        while pos < stop:
            block = fh.read(BLOCK)
            if not block:
                return
            last = block.rfind(b"\n")
            if last < 0:
                head.append(block)
                continue
            head.append(block[:last])
            lines = b"".join(head).split(b"\n")
            head = [block[last + 1 :]]
            for line in lines:
                if pos >= stop:
                    return
                pos += len(line) + 1
                yield line, pos
