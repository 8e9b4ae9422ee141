"""Faults in hook registration (issue 17, items 8 and 9): capture silently off because settings.json
lost our hooks, a symlinked settings.json, and an uninstall that must not half-happen."""

import json
import os

import pytest

from cc_capture.hooks_install import HOOK_EVENTS
from conftest import ccd


@pytest.fixture
def claude_dir(tmp_path, monkeypatch):
    d = tmp_path / "claude-config"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(d))
    return d


def test_status_warns_when_no_hooks_are_registered(paths, claude_dir):
    ccd("hooks", "install")
    hooks = json.loads(ccd("status", "--json").stdout)["hooks"]
    assert hooks["installed"] == list(HOOK_EVENTS) and hooks["missing"] == [] and hooks["error"] is None
    assert "hooks registered for all 15 events" in ccd("status").stdout
    ccd("hooks", "uninstall")
    hooks = json.loads(ccd("status", "--json").stdout)["hooks"]
    assert hooks == {"settings_path": str(claude_dir / "settings.json"), "installed": [],
                     "missing": list(HOOK_EVENTS), "plugin_enabled": False, "missing_scripts": [], "error": None}
    assert "no capture hooks in" in ccd("status").stdout and "nothing is captured" in ccd("status").stdout


def test_status_names_the_events_a_tool_dropped_from_settings(paths, claude_dir):
    ccd("hooks", "install")
    settings = claude_dir / "settings.json"
    data = json.loads(settings.read_text())
    del data["hooks"]["PostToolUse"], data["hooks"]["Stop"]  # another tool rewrote the file
    settings.write_text(json.dumps(data))
    hooks = json.loads(ccd("status", "--json").stdout)["hooks"]
    assert hooks["missing"] == ["PostToolUse", "Stop"] and len(hooks["installed"]) == 13
    out = ccd("status").stdout
    assert "13 of 15 events" in out and "missing: PostToolUse, Stop" in out


def test_status_accepts_hooks_from_the_plugin(paths, claude_dir):
    claude_dir.mkdir()
    (claude_dir / "settings.json").write_text(json.dumps({"enabledPlugins": {"cc-capture@cc-capture": True}}))
    hooks = json.loads(ccd("status", "--json").stdout)["hooks"]
    assert hooks["plugin_enabled"] and hooks["installed"] == []
    assert "hooks registered by the cc-capture plugin" in ccd("status").stdout


def test_status_reports_a_missing_hook_script(paths, claude_dir):
    ccd("hooks", "install")
    (paths.home / "hooks" / "cc-capture-emit.sh").unlink()
    hooks = json.loads(ccd("status", "--json").stdout)["hooks"]
    assert hooks["missing_scripts"] == [str(paths.home / "hooks" / "cc-capture-emit.sh")]
    assert "hooks point at a missing script" in ccd("status").stdout


def test_install_and_uninstall_write_through_a_symlinked_settings_json(paths, claude_dir, tmp_path):
    dotfiles = tmp_path / "dotfiles" / "claude-settings.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text(json.dumps({"model": "opus"}))
    claude_dir.mkdir()
    link = claude_dir / "settings.json"
    link.symlink_to(dotfiles)
    ccd("hooks", "install")
    assert link.is_symlink() and os.readlink(link) == str(dotfiles)
    data = json.loads(dotfiles.read_text())
    assert data["model"] == "opus" and set(data["hooks"]) == set(HOOK_EVENTS)
    ccd("hooks", "uninstall")
    assert link.is_symlink() and json.loads(dotfiles.read_text()) == {"model": "opus"}
    assert not list(dotfiles.parent.glob(".*tmp"))  # no temporary file left beside the target
