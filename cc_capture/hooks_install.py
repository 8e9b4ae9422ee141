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
from pathlib import Path
from typing import Any

from cc_capture.paths import Paths

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
    from importlib import resources  # here: `ccd status` imports this module and never needs it

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
    for event, groups in data.get("hooks", {}).items():
        if not isinstance(groups, list):
            raise SettingsError(f'{path}: "hooks.{event}" is not a list of hook groups; cc-capture will not touch '
                                "it. Fix the file, then run `ccd hooks install` again.")
    return data


def _without_ours(hooks: dict[str, Any]) -> dict[str, Any]:
    """The user's hooks with every cc-capture entry removed (empty groups and events dropped)."""
    out: dict[str, Any] = {}
    for event, groups in hooks.items():  # each a list: _load refuses anything else
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


def _backup(path: Path) -> Path:
    """A private copy beside settings.json, under a name no earlier backup has (two changes in one
    second must not overwrite the first one's backup)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while True:
        backup = path.with_name(f"{path.name}.bak-cc-capture-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            n += 1
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(path.read_bytes())
        return backup


def _write(path: Path, data: dict[str, Any], original_exists: bool) -> Path | None:
    """Write atomically. A symlinked settings.json (dotfiles, home-manager) stays a link: the file it
    points to is the one replaced."""
    backup = _backup(path) if original_exists else None
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = (target.stat().st_mode & 0o777) if target.exists() else 0o600
    tmp = target.with_name(f".{target.name}.cc-capture-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, target)
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


def _our_commands(data: dict[str, Any]) -> dict[str, list[str]]:
    """Event → the cc-capture hook commands registered for it."""
    out: dict[str, list[str]] = {}
    for event, groups in data.get("hooks", {}).items():
        for g in groups:
            inner = g.get("hooks") if isinstance(g, dict) else None
            for h in inner if isinstance(inner, list) else []:
                if _is_ours(h):
                    out.setdefault(event, []).append(str(h["command"]))
    return out


def installed_events(path: Path | None = None) -> list[str]:
    """Events whose hooks include the cc-capture emitter (empty if settings.json is unreadable)."""
    try:
        data = _load(path or settings_path())
    except (SettingsError, OSError):
        return []
    return list(_our_commands(data))


@dataclass
class Registration:
    """Which events reach cc-capture, as settings.json says: what `ccd status` and `ccd doctor` show."""

    settings_path: Path
    installed: list[str]  # events with the cc-capture hook in settings.json
    missing: list[str]  # events of HOOK_EVENTS without it
    plugin_enabled: bool  # the cc-capture plugin is enabled: its hooks/hooks.json registers every event
    missing_scripts: list[str]  # registered hook scripts that do not exist (or are not executable)
    error: str | None  # settings.json could not be read: why

    @property
    def complete(self) -> bool:
        return self.error is None and not self.missing_scripts and (self.plugin_enabled or not self.missing)

    def as_dict(self) -> dict[str, Any]:
        return {"settings_path": str(self.settings_path), "installed": self.installed, "missing": self.missing,
                "plugin_enabled": self.plugin_enabled, "missing_scripts": self.missing_scripts,
                "error": self.error}


def _plugin_enabled(data: dict[str, Any]) -> bool:
    """`enabledPlugins` holds `name@marketplace` keys whose value is true (or a list of versions)."""
    plugins = data.get("enabledPlugins")
    return isinstance(plugins, dict) and any(
        key.split("@", 1)[0] == "cc-capture" and bool(on) for key, on in plugins.items())


def _script_of(command: str) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    return words[0] if words else None


def registration(path: Path | None = None) -> Registration:
    path = path or settings_path()
    try:
        data = _load(path)
    except (SettingsError, OSError, UnicodeDecodeError) as e:
        return Registration(path, [], list(HOOK_EVENTS), False, [], str(e))
    commands = _our_commands(data)
    scripts = {_script_of(c) or c for cs in commands.values() for c in cs}
    missing_scripts = sorted(s for s in scripts if not (os.path.isfile(s) and os.access(s, os.X_OK)))
    return Registration(path, list(commands), [e for e in HOOK_EVENTS if e not in commands], _plugin_enabled(data),
                        missing_scripts, None)
