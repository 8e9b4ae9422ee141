"""What README documents of each `--json` shape, parsed, for the tests that hold commands to it.

README writes a shape as a bullet "`COMMAND --json`: `{key, key: {…}, key: [{…}] | null, …}`"
(several commands may share one: "`deploy --json`, `rollback --json`: `{…}`"). A key is the first
word of each comma-separated item; an object or a list of objects after it is its value's shape;
words in parentheses, `| null` and `or null` are prose. Every README key check goes through here,
so a key counts as documented only where its shape says it is, not because the word is somewhere
in README.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent.parent / "README.md"

Shape = dict  # key → its value's Shape, or None for a value with no documented keys

_OPEN, _CLOSE = "{[(", "}])"
_KEY = re.compile(r"\s*([A-Za-z_][\w|]*)")


def _text() -> str:
    return README.read_text()


def _balanced(text: str, start: int) -> str:
    """The text from the bracket at `start` to its match, inside them."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] in _OPEN:
            depth += 1
        elif text[i] in _CLOSE:
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    raise AssertionError(f"README: unbalanced brackets in {text[start:start + 80]!r}")


def _split(text: str) -> list[str]:
    """Items separated by commas outside any bracket."""
    items, depth, item = [], 0, ""
    for ch in text:
        depth += ch in _OPEN
        depth -= ch in _CLOSE
        if ch == "," and depth == 0:
            items.append(item)
            item = ""
        else:
            item += ch
    return items + [item]


def _value(text: str) -> Shape | None:
    """The shape of a value: its first object or list outside parentheses; None for prose."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch in "{[":
            inner = _balanced(text, i)
            return _object(inner) if ch == "{" else _value(inner)
    return None


def _object(inner: str) -> Shape:
    shape: Shape = {}
    for item in _split(inner):
        m = _KEY.match(item)
        if not m:  # "..."
            continue
        rest = item[m.end():].lstrip()
        shape[m.group(1)] = _value(rest[1:] if rest.startswith(":") else rest)
    return shape


def shape(command: str) -> Shape:
    """The documented shape of `command --json` (for a list, that of its items)."""
    text = _text()
    m = re.search(rf"`{re.escape(command)} --json`(?:, `[^`]+`)*: `(?=[{{\[])", text)
    assert m, f"README documents no shape for `{command} --json`"
    return _value(text[m.end():])


def keys(command: str, *path: str) -> set[str]:
    """The keys README documents for `command --json`, or for the object at `path` inside it
    (`keys("status", "learning", "last_pipeline")`)."""
    found = shape(command)
    for key in path:
        assert found.get(key) is not None, f"README documents no keys under {'.'.join(path)} of `{command} --json`"
        found = found[key]
    return set(found)


def all_keys(found: Shape | None) -> set[str]:
    """Every key of a shape, at any depth."""
    return set() if not found else set(found) | {k for v in found.values() for k in all_keys(v)}


def bullet(command: str) -> str:
    """The whole README bullet that documents `command --json`, its prose included."""
    text = _text()
    m = re.search(rf"^- `{re.escape(command)} --json`.*?(?=^- |^\S|\Z)", text, re.M | re.S)
    assert m, f"README has no bullet for `{command} --json`"
    return m.group(0)


def named(text: str) -> set[str]:
    """Keys a stretch of README prose names: `key` in backticks, and the keys of inline shapes."""
    names = set(re.findall(r"`([A-Za-z_]\w*)`", text))
    for inline in re.findall(r"`([{\[][^`]*)`", text):
        names |= all_keys(_value(inline))
    return names
