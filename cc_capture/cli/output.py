"""Output helpers: stable JSON for machines, rich tables for people.

`console` and `err_console` are made on first use (`from cc_capture.cli.output import console`
makes them): rich takes longer to import than `ccd status --json` takes to answer.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # imported when called: `ccd status` must not pay for the settings' pydantic
    from cc_capture.config import Paths, Settings
    from cc_capture.store import Database


def _console(name: str) -> Any:
    if name not in globals():
        from rich.console import Console

        globals().update(console=Console(), err_console=Console(stderr=True))
    return globals()[name]


def __getattr__(name: str) -> Any:
    if name in ("console", "err_console"):
        return _console(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def print_json(obj: Any) -> None:
    """`--json` output: records (cc_capture.records), alone or inside lists and dicts, in their JSON form."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=_record) + "\n")


def _record(value: Any) -> Any:
    from cc_capture.records import jsonable  # msgspec, only where there are records: not for `ccd status`

    return jsonable(value)


def open_settings(paths: Paths | None = None) -> Settings:
    """This home's settings (`config.toml` and `CC_CAPTURE_*` overrides), or a clear error and exit 1
    naming the invalid value."""
    from cc_capture.config import ConfigError, load_settings

    try:
        return load_settings(paths)
    except ConfigError as e:
        fail(str(e))


def open_db(paths: Paths | None = None) -> Database:
    """This home's database, brought up to date, or a clear error and exit 1 when it cannot be opened
    (newer than this cc-capture, or deleted under the daemon). A damaged file raises sqlite3's
    DatabaseError, which `cli.fast.main` answers with how to recover it."""
    from cc_capture import store
    from cc_capture.paths import Paths

    try:
        return store.connect((paths or Paths()).db)
    except RuntimeError as e:
        fail(str(e))


def open_home() -> tuple[Paths, Settings, Database]:
    """(paths, settings, database) of this home for a command; `open_settings` and `open_db` say
    what fails and how."""
    from cc_capture.paths import Paths

    paths = Paths()
    return paths, open_settings(paths), open_db(paths)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a clear error and exit with `code` (raises SystemExit, which typer passes on). The message
    is plain text: `[deploy] ollama_host` in it is printed as written, not read as markup."""
    from rich.markup import escape

    _console("err_console").print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def local_clock(iso_ts: str | None) -> str:
    """An ISO time as the weekday and clock of this machine ("Sun 01:00")."""
    from datetime import datetime

    return datetime.fromisoformat(iso_ts).astimezone().strftime("%a %H:%M") if iso_ts else "-"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def ago(iso_ts: str | None) -> str:
    if not iso_ts:
        return "never"
    t = time.mktime(time.strptime(iso_ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return f"{iso_ts[:19].replace('T', ' ')} UTC ({human_duration(max(0.0, time.time() - t))} ago)"


def one_line(text: str | None, width: int) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
