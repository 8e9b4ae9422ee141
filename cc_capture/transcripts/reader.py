"""Read the complete lines appended to a JSONL file since an offset, in bounded chunks.

Claude Code appends to a transcript while we read it, so a trailing line without its newline
is left for the next read. Memory stays bounded by the chunk size plus the longest line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

CHUNK = 1 << 20


def new_lines(path: Path, offset: int) -> Iterator[tuple[bytes, int]]:
    """Yield (line, offset just past it) for each complete line after `offset`."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        tail = b""
        pos = offset
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                return
            data = tail + chunk
            start = 0
            while True:
                nl = data.find(b"\n", start)
                if nl < 0:
                    break
                pos += nl + 1 - start
                yield data[start:nl], pos
                start = nl + 1
            tail = data[start:]
