"""Styled text for `ccd status` without rich: importing rich's console and table takes longer
than the whole command may (goal: under 0.15 s), so the fast path writes its own. It reads the
few markup tags the status uses, as rich writes them (`[bold]`, `[red]`, `[green]`, `[yellow]`,
`[/]`, and `\\[` for a literal bracket), colours only on a terminal (never under NO_COLOR), and
lays out a two-column table whose values wrap under themselves to the terminal's width.
"""

from __future__ import annotations

import os
import re
import shutil
import sys

_CODES = {"bold": "1", "red": "31", "green": "32", "yellow": "33"}
_TAG = re.compile(r"\\\[|\[(/)?((?:bold|red|green|yellow)(?: (?:bold|red|green|yellow))*)?\]")


def escape(text: str) -> str:
    """Text shown as it is, brackets and all (rich.markup.escape's form)."""
    return text.replace("[", "\\[")


def render(markup: str, color: bool) -> str:
    """Markup → text, with ANSI styles when `color`."""
    stack: list[str] = []

    def tag(m: re.Match) -> str:
        closing, style = m.group(1), m.group(2)
        if m.group(0) == "\\[":
            return "["
        if closing:
            if stack:
                stack.pop()
            return ("\x1b[0m" + "".join(f"\x1b[{c}m" for c in stack)) if color else ""
        if style is None:  # "[]": not a tag
            return m.group(0)
        code = ";".join(_CODES[s] for s in style.split())
        stack.append(code)
        return f"\x1b[{code}m" if color else ""

    out = _TAG.sub(tag, markup)
    return out + ("\x1b[0m" if color and stack else "")


def _visible_len(markup: str) -> int:
    return len(render(markup, color=False))


def _wrap(markup: str, width: int) -> list[str]:
    """Words of `markup` in lines of at most `width` visible characters (a longer word alone)."""
    lines: list[list[str]] = [[]]
    used = 0
    for word in markup.split(" "):
        n = _visible_len(word)
        if lines[-1] and used + 1 + n > width:
            lines.append([])
            used = 0
        used += n + (1 if len(lines[-1]) else 0)
        lines[-1].append(word)
    return [" ".join(words) for words in lines]


class Terminal:
    """Where `ccd status` writes: stdout, styled and wrapped only when it is a terminal."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.color = self.tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"

    def print(self, markup: str) -> None:
        self.stream.write(render(markup, self.color) + "\n")

    def table(self, rows: list[tuple[str, str]]) -> None:
        """Label and value per row, labels bold in a column of their own."""
        if not rows:
            return
        left = max(len(label) for label, _ in rows)
        room = shutil.get_terminal_size().columns - left - 2 if self.tty else 0
        for label, value in rows:
            lines = _wrap(value, room) if room >= 20 else [value]
            head = render(f"[bold]{escape(label)}[/]", self.color) + " " * (left - len(label) + 2)
            self.stream.write(head + render(lines[0], self.color) + "\n")
            for line in lines[1:]:
                self.stream.write(" " * (left + 2) + render(line, self.color) + "\n")
