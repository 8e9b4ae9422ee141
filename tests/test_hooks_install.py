"""`ccd hooks install|uninstall`: merge into settings.json, idempotent, keep user hooks, back up, refuse bad JSON."""

import json
import os
import stat
import subprocess

import pytest

from cc_capture import hooks_install
from cc_capture.hooks_install import EMITTER_NAME, HOOK_EVENTS, SettingsError, install, installed_events, uninstall

USER_HOOK = {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/audit-bash.sh"}]}


@pytest.fixture
def settings(tmp_path):
    return tmp_path / ".claude" / "settings.json"


def test_fresh_install_registers_every_event(paths, settings):
    r = install(paths, settings)
    assert r.changed and r.backup is None
    data = json.loads(settings.read_text())
    assert set(data["hooks"]) == set(HOOK_EVENTS)
    for event in HOOK_EVENTS:
        (group,) = data["hooks"][event]
        (hook,) = group["hooks"]
        assert hook["type"] == "command" and EMITTER_NAME in hook["command"] and "async" not in hook
    assert stat.S_IMODE(os.stat(settings).st_mode) == 0o600
    emitter = paths.home / "hooks" / EMITTER_NAME
    assert os.access(emitter, os.X_OK)
    # The registered command really journals a payload.
    subprocess.run(hook["command"], shell=True, input=b'{"hook_event_name":"Stop"}', check=True)
    assert len(list(paths.journal.glob("*.ev"))) == 1


def test_merge_keeps_user_settings_and_hooks_and_backs_up(paths, settings):
    settings.parent.mkdir()
    original = {"model": "opus", "permissions": {"allow": ["Bash(ls)"]}, "hooks": {"PreToolUse": [USER_HOOK]}}
    settings.write_text(json.dumps(original))
    r = install(paths, settings)
    data = json.loads(settings.read_text())
    assert data["model"] == "opus" and data["permissions"] == original["permissions"]
    assert data["hooks"]["PreToolUse"][0] == USER_HOOK and len(data["hooks"]["PreToolUse"]) == 2
    assert json.loads(r.backup.read_text()) == original


def test_install_is_idempotent(paths, settings):
    install(paths, settings)
    first = settings.read_text()
    r = install(paths, settings)
    assert not r.changed and r.backup is None and settings.read_text() == first
    assert len(list(settings.parent.glob("settings.json.bak-*"))) == 0


def test_reinstall_after_moving_home_replaces_old_entries(paths, settings, tmp_path):
    from cc_capture.config import Paths

    install(paths, settings)
    install(Paths(tmp_path / "elsewhere"), settings)
    data = json.loads(settings.read_text())
    assert all(len(data["hooks"][e]) == 1 and "elsewhere" in data["hooks"][e][0]["hooks"][0]["command"]
               for e in HOOK_EVENTS)


def test_invalid_json_is_refused_and_untouched(paths, settings):
    settings.parent.mkdir()
    settings.write_text('{"hooks": {,}')
    with pytest.raises(SettingsError, match=r"not valid JSON \(line 1, column 12"):
        install(paths, settings)
    assert settings.read_text() == '{"hooks": {,}'
    assert not list(settings.parent.glob("*.bak-*"))


@pytest.mark.parametrize("text", ['[1, 2]', '{"hooks": []}'])
def test_wrong_shapes_are_refused(paths, settings, text):
    settings.parent.mkdir()
    settings.write_text(text)
    with pytest.raises(SettingsError):
        install(paths, settings)
    assert settings.read_text() == text


def test_uninstall_removes_only_ours(paths, settings):
    settings.parent.mkdir()
    settings.write_text(json.dumps({"hooks": {"PreToolUse": [USER_HOOK]}, "model": "opus"}))
    install(paths, settings)
    assert sorted(installed_events(settings)) == sorted(HOOK_EVENTS)
    r = uninstall(settings)
    assert r.changed and r.backup
    assert json.loads(settings.read_text()) == {"hooks": {"PreToolUse": [USER_HOOK]}, "model": "opus"}
    assert installed_events(settings) == []
    assert not uninstall(settings).changed


def test_default_path_honours_claude_config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "cfg"))
    assert hooks_install.settings_path() == tmp_path / "cfg" / "settings.json"
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hooks_install.settings_path() == tmp_path / ".claude" / "settings.json"
