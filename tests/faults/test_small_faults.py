"""The small faults of issue 17, item 14: each a wrong behaviour a user hits, each one test,
run through the real `ccd` process (or the real daemon) as a user meets it."""

import json
import os
import stat
import subprocess
import sys
import time

from cc_capture import __version__
from cc_capture.hooks_install import install, uninstall
from conftest import ccd, emit, ingest_all, wait_for


def test_version():
    p = ccd("--version")
    assert p.stdout.strip() == f"ccd (cc-capture) {__version__}"


def test_an_unbounded_poll_interval_is_refused_not_a_crash(paths, monkeypatch):
    monkeypatch.setenv("CC_CAPTURE_CAPTURE__POLL_INTERVAL_S", "1e12")
    p = ccd("daemon", "run", check=False)
    assert p.returncode == 1 and "poll_interval_s" in p.stderr and "Traceback" not in p.stderr


def test_config_toml_as_a_directory_is_a_clear_error(paths):
    (paths.home / "config.toml").mkdir()
    p = ccd("ingest", check=False)
    assert p.returncode == 1 and "config.toml: cannot be read" in p.stderr and "Traceback" not in p.stderr


def test_backups_within_one_second_do_not_overwrite_each_other(paths, tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text('{"model": "opus"}')
    install(paths, settings)  # backs up {"model": "opus"}
    uninstall(settings)  # backs up the file with hooks, in the same second
    backups = sorted(tmp_path.glob("settings.json.bak-cc-capture-*"))
    assert len(backups) == 2
    contents = sorted(b.read_text() for b in backups)
    assert '{"model": "opus"}' in contents and any("hooks" in c for c in contents)
    assert all(stat.S_IMODE(b.stat().st_mode) == 0o600 for b in backups)


def test_a_non_list_event_in_settings_json_is_a_clear_error(paths, tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text('{"hooks": {"PreToolUse": "~/bin/audit.sh"}}')
    p = ccd("hooks", "install", "--settings", str(settings), check=False)
    assert p.returncode == 1 and '"hooks.PreToolUse" is not a list' in p.stderr and "Traceback" not in p.stderr
    assert settings.read_text() == '{"hooks": {"PreToolUse": "~/bin/audit.sh"}}'


def test_lock_file_is_private(paths):
    paths.lockfile.write_text("")
    os.chmod(paths.lockfile, 0o644)  # as an older `ccd ingest` left it
    ccd("ingest")
    assert stat.S_IMODE(paths.lockfile.stat().st_mode) == 0o600


def test_datasets_folder_is_private(paths, shared):
    from conftest import SESSION_42067652, replay

    replay(paths, shared, SESSION_42067652)
    ingest_all(paths)
    ccd("rate", "up")
    p = ccd("dataset", "build", "--json")
    folder = json.loads(p.stdout)["path"]
    for d in (paths.home / "datasets", folder):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d


def test_id_prefixes_take_percent_and_underscore_literally(paths):
    base = {"session_id": "s_1", "cwd": "/w"}
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt_id": "abc", "prompt": "first"})
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt_id": "a_c", "prompt": "second"})
    ingest_all(paths)
    assert ccd("traces", "show", "a_", "--json", check=False).returncode == 0  # one match: a_c, not abc too
    assert json.loads(ccd("traces", "show", "a_", "--json").stdout)["trace_id"] == "a_c"
    p = ccd("traces", "show", "%", check=False)
    assert p.returncode == 1 and "no trace matches '%'" in p.stderr
    assert json.loads(ccd("traces", "list", "--session", "s%", "--json").stdout) == []


def test_import_json_exits_non_zero_when_a_session_failed(paths, shared):
    """A session whose import raises (a parser bug, simulated as test_transcripts does) in a real
    `ccd import --json` process."""
    code = """
import sys
from cc_capture.transcripts import importer
original = importer.Importer._assistant
def broken(self, rec, state, *args):
    if state.session.startswith("4206"):
        raise RuntimeError("simulated bug")
    return original(self, rec, state, *args)
importer.Importer._assistant = broken
from cc_capture.cli.main import app
sys.argv = ["ccd", "import", sys.argv[1], "--json", "--workers", "0"]
app()
"""
    p = subprocess.run([sys.executable, "-c", code, str(shared / "transcripts" / "cc-2.1.328")],
                       capture_output=True, text=True, timeout=120)
    assert json.loads(p.stdout)["failed"] == {"42067652-f236-40d4-9ddc-e0f17f556545": "RuntimeError: simulated bug"}
    assert p.returncode == 1


def test_a_folder_named_like_a_transcript_is_not_a_failed_session(paths, tmp_path, shared):
    project = tmp_path / "projects" / "p"
    (project / "x.jsonl").mkdir(parents=True)
    p = ccd("import", str(tmp_path / "projects"), "--json")
    data = json.loads(p.stdout)
    assert data["failed"] == {} and data["sessions"] == 0


def test_a_symlink_loop_does_not_abort_the_import(paths, tmp_path, shared):
    project = tmp_path / "projects" / "p"
    project.mkdir(parents=True)
    src = shared / "transcripts" / "cc-2.1.328" / "42067652-f236-40d4-9ddc-e0f17f556545.jsonl"
    (project / src.name).write_bytes(src.read_bytes())
    (project / "loop.jsonl").symlink_to(project / "loop.jsonl")
    (project / "deeper").symlink_to(project)
    data = json.loads(ccd("import", str(tmp_path / "projects"), "--json").stdout)
    assert data["failed"] == {} and data["traces"] >= 1


def test_daemon_log_and_hook_errors_log_are_rotated_by_size(paths, monkeypatch):
    monkeypatch.setenv("CC_CAPTURE_CAPTURE__MAX_LOG_BYTES", "4000")
    monkeypatch.setenv("CC_CAPTURE_CAPTURE__MIRROR_TRANSCRIPTS", "false")
    paths.hook_errors.write_text("1\tcannot create a journal record in /x\n" * 200)  # 7.6 KB
    ccd("daemon", "start")
    try:
        wait_for(lambda: (paths.home / "hook-errors.log.1").exists(), message="hook-errors.log rotated")
        for i in range(60):  # each pass that ingests logs a line
            emit(paths, {"hook_event_name": "Notification", "session_id": f"s{i}", "message": "x" * 10})
            time.sleep(0.05)
        wait_for(lambda: (paths.logs / "daemon.log.1").exists(), message="daemon.log rotated")
        # The daemon writes into the fresh file, not into the rotated one.
        wait_for(lambda: "daemon.log rotated" in paths.daemon_log.read_text(), message="new daemon.log in use")
        assert paths.daemon_log.stat().st_size < 4000 * 2
        assert stat.S_IMODE(paths.daemon_log.stat().st_mode) == 0o600
    finally:
        ccd("daemon", "stop")
    assert "ccd daemon stopped" in paths.daemon_log.read_text()
    assert json.loads(ccd("status", "--json").stdout)["hook_errors"]["count"] == 0
