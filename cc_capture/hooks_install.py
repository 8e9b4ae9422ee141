"""Register the hook emitter in Claude Code's settings.json, for people who don't use plugins.

The same events as the plugin's `hooks/hooks.json`. Merging is idempotent and keeps the
user's own hooks; the file is backed up before any change and written atomically; a file that
is not valid JSON is never touched.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cc_capture.config import Paths

HOOK_EVENTS = (
    "SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure", "PostToolBatch",
    "PermissionRequest", "SubagentStart", "SubagentStop", "Stop", "StopFailure", "PreCompact", "PostCompact",
    "Notification", "SessionEnd",
)
EMITTER_NAME = "cc-capture-emit.sh"
HOOK_TIMEOUT_S = 30


class SettingsError(Exception):
    """settings.json can't be changed safely; the message says why and what to do."""


@dataclass
class InstallResult:
    settings_path: Path
    changed: bool
    backup: Path | None
    command: str | None = None


def settings_path() -> Path:
    """Claude Code's user settings: `$CLAUDE_CONFIG_DIR/settings.json`, else `~/.claude/settings.json`."""
    base = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(base) if base else Path.home() / ".claude") / "settings.json"


def emitter_source() -> Path:
    """The emitter shipped in the wheel, or `hooks/emit.sh` of a source checkout."""
    packaged = resources.files("cc_capture") / "_data" / "emit.sh"
    if packaged.is_file():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "hooks" / "emit.sh"
    if checkout.is_file():
        return checkout
    raise SettingsError("the hook emitter (emit.sh) is missing from this installation: reinstall cc-capture")


def install_emitter(paths: Paths) -> Path:
    """Copy the emitter into the data folder, so the hook keeps working whatever happens to the venv."""
    paths.ensure()
    target = paths.hooks_dir / EMITTER_NAME
    target.parent.mkdir(mode=0o700, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    shutil.copyfile(emitter_source(), tmp)
    os.chmod(tmp, 0o700)
    os.replace(tmp, target)
    return target


def hook_command(emitter: Path, home: Path) -> str:
    return f"{shlex.quote(str(emitter))} {shlex.quote(str(home))}"


def _is_ours(hook: Any) -> bool:
    return isinstance(hook, dict) and EMITTER_NAME in str(hook.get("command", ""))


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SettingsError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
            "cc-capture will not touch it. Fix the file, then run `ccd hooks install` again."
        ) from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path} does not hold a JSON object; cc-capture will not touch it")
    if not isinstance(data.get("hooks", {}), dict):
        raise SettingsError(f'{path}: "hooks" is not an object; cc-capture will not touch it')
    return data


def _without_ours(hooks: dict[str, Any]) -> dict[str, Any]:
    """The user's hooks with every cc-capture entry removed (empty groups and events dropped)."""
    out: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            out[event] = groups
            continue
        kept = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                inner = [h for h in group["hooks"] if not _is_ours(h)]
                if inner:
                    kept.append({**group, "hooks": inner})
                elif not group["hooks"]:
                    kept.append(group)
            else:
                kept.append(group)
        if kept:
            out[event] = kept
    return out


def _write(path: Path, data: dict[str, Any], original_exists: bool) -> Path | None:
    backup = None
    if original_exists:
        backup = path.with_name(f"{path.name}.bak-cc-capture-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
        os.chmod(backup, 0o600)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = (path.stat().st_mode & 0o777) if original_exists else 0o600
    tmp = path.with_name(f".{path.name}.cc-capture-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return backup


def install(paths: Paths, path: Path | None = None) -> InstallResult:
    path = path or settings_path()
    data = _load(path)
    command = hook_command(install_emitter(paths), paths.home)
    hooks = _without_ours(data.get("hooks", {}))
    for event in HOOK_EVENTS:
        hooks.setdefault(event, []).append(
            {"hooks": [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}]}
        )
    new = {**data, "hooks": hooks}
    if new == data:
        return InstallResult(path, False, None, command)
    return InstallResult(path, True, _write(path, new, path.exists()), command)


def uninstall(path: Path | None = None) -> InstallResult:
    path = path or settings_path()
    if not path.exists():
        return InstallResult(path, False, None)
    data = _load(path)
    hooks = _without_ours(data.get("hooks", {}))
    new = {k: v for k, v in data.items() if k != "hooks"}
    if hooks:
        new["hooks"] = hooks
    if new == data:
        return InstallResult(path, False, None)
    return InstallResult(path, True, _write(path, new, True))


def installed_events(path: Path | None = None) -> list[str]:
    """Events whose hooks include the cc-capture emitter (empty if settings.json is unreadable)."""
    try:
        data = _load(path or settings_path())
    except (SettingsError, OSError):
        return []
    return [
        event for event, groups in data.get("hooks", {}).items()
        if isinstance(groups, list) and any(
            isinstance(g, dict) and any(_is_ours(h) for h in g.get("hooks", []) or []) for g in groups
        )
    ]
