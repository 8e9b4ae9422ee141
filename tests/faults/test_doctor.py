"""`ccd doctor` (issue 17, item 15): every check on a real home, a real daemon, a real database and
real transcripts; Ollama is a tiny HTTP server written from Ollama's API documentation
(`GET /api/version` → `{"version": ...}`), since no Ollama server runs here."""

import http.server
import json
import os
import shutil
import signal
import time

import pytest

from cc_capture.loopback import LoopbackServer
from conftest import ccd, emit, wait_for
from support import readme
from support.faults import fill, small_tmpfs

CHECKS = ["config", "hooks", "daemon", "journal", "database", "disk", "file_modes", "transcripts", "claude_code",
          "training_stack", "ollama"]
CHECK_KEYS = {"name", "status", "message", "action", "details"}
TRANSCRIPT = "cc-2.1.328/42067652-f236-40d4-9ddc-e0f17f556545.jsonl"


@pytest.fixture
def home(paths, tmp_path, monkeypatch, shared):
    """A healthy installation: hooks in a private settings.json, transcripts of Claude Code 2.1.328."""
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))
    project = tmp_path / "projects" / "-home-user-project"
    project.mkdir(parents=True)
    shutil.copy(shared / "transcripts" / TRANSCRIPT, project)
    (paths.home / "config.toml").write_text(f'[capture]\ntranscript_roots = ["{tmp_path / "projects"}"]\n'
                                            "mirror_transcripts = false\n")
    os.chmod(paths.home / "config.toml", 0o600)
    ccd("hooks", "install")
    return paths


def doctor():
    """`ccd doctor --json`; with learning configured it imports the training stack (a minute on a busy machine)."""
    p = ccd("doctor", "--json", check=False)
    data = json.loads(p.stdout)
    return p.returncode, data, {c["name"]: c for c in data["checks"]}


@pytest.fixture
def daemon(home):
    ccd("daemon", "start")
    yield home
    ccd("daemon", "stop")


def test_a_healthy_installation_passes(daemon):
    code, data, checks = doctor()
    assert [c["name"] for c in data["checks"]] == CHECKS
    assert all(set(c) == CHECK_KEYS for c in data["checks"])
    assert {n: c["status"] for n, c in checks.items() if c["status"] not in ("ok", "skip")} == {}
    assert code == 0 and data["ok"] is True
    assert checks["ollama"]["status"] == "skip"  # learning is off
    assert checks["claude_code"]["details"]["version"] == "2.1.328"
    stack = checks["training_stack"]["details"]
    assert stack["missing"] == [] and stack["imported"] is False  # the test venv has the train extra
    assert checks["daemon"]["details"]["running"] and checks["journal"]["details"]["files"] == 0
    human = ccd("doctor")
    assert "all good" in human.stdout and "hooks" in human.stdout
    assert set(data) == readme.keys("doctor") and CHECK_KEYS == readme.keys("doctor", "checks")
    # each check's details, named in the doctor bullet or (`hooks`, `disk`, `daemon`) objects of status
    documented = readme.named(readme.bullet("doctor")) | readme.all_keys(readme.shape("status"))
    for key in [*CHECKS, *(k for c in data["checks"] for k in c["details"])]:
        assert key in documented, key
    status_hooks = json.loads(ccd("status", "--json").stdout)["hooks"]
    assert status_hooks == checks["hooks"]["details"]
    assert set(status_hooks) == readme.keys("status", "hooks")


def test_no_daemon_and_no_hooks_fail_with_what_to_do(home):
    ccd("hooks", "uninstall")
    emit(home, {"hook_event_name": "Stop", "session_id": "s"})
    code, data, checks = doctor()
    assert code == 1 and data["ok"] is False
    assert checks["daemon"]["status"] == "fail" and "ccd daemon start" in checks["daemon"]["action"]
    assert checks["hooks"]["status"] == "fail" and "ccd hooks install" in checks["hooks"]["action"]
    assert checks["journal"]["details"]["files"] == 1
    human = ccd("doctor", check=False)
    assert human.returncode == 1 and "ccd daemon start" in human.stdout and "2 failed" in human.stdout


def test_a_stopped_daemon_that_holds_its_lock_is_not_ingesting(daemon):
    pid = json.loads(ccd("daemon", "status", "--json").stdout)["pid"]
    os.kill(pid, signal.SIGSTOP)  # alive, holding the lock, doing nothing
    try:
        emit(daemon, {"hook_event_name": "Stop", "session_id": "s"})
        time.sleep(10.5)
        code, _, checks = doctor()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert code == 1 and checks["daemon"]["status"] == "fail" and "not ingesting" in checks["daemon"]["message"]
    wait_for(lambda: doctor()[2]["daemon"]["status"] == "ok", message="the resumed daemon ingests again")


def test_a_damaged_database_fails_with_how_to_recover(home):
    emit(home, {"hook_event_name": "Stop", "session_id": "s"})
    ccd("ingest")
    db = home.db
    size = db.stat().st_size
    with open(db, "r+b") as fh:  # 8 KB of garbage in the middle
        fh.seek(size // 2 // 4096 * 4096)
        fh.write(os.urandom(8192))
    code, _, checks = doctor()
    assert code == 1 and checks["database"]["status"] == "fail"
    assert "ccd import" in checks["database"]["action"] and "move" in checks["database"]["action"]


def test_loose_file_modes_and_an_unreadable_transcript_root(home, tmp_path):
    os.chmod(home.home / "config.toml", 0o644)
    (home.home / "config.toml").write_text(f'[capture]\ntranscript_roots = ["{tmp_path / "a-file"}"]\n')
    (tmp_path / "a-file").write_text("not a folder")
    code, _, checks = doctor()
    assert checks["file_modes"]["status"] == "warn" and "config.toml (0644)" in checks["file_modes"]["message"]
    assert "chmod -R go-rwx" in checks["file_modes"]["action"]
    assert checks["transcripts"]["status"] == "fail" and code == 1


def test_a_newer_claude_code_is_flagged(home, tmp_path):
    project = tmp_path / "projects" / "-home-user-project"
    newer = project / "0000-newer.jsonl"
    newer.write_text(json.dumps({"type": "user", "version": "2.2.3", "sessionId": "n",
                                 "message": {"role": "user", "content": "hi"}}) + "\n")
    os.utime(newer, (time.time() + 5, time.time() + 5))
    _, _, checks = doctor()
    assert checks["claude_code"]["status"] == "warn" and "2.2.3" in checks["claude_code"]["message"]
    assert checks["claude_code"]["details"]["known"] == "2.1.328"


class _OllamaDouble(http.server.BaseHTTPRequestHandler):
    """Answers `GET /api/version` as Ollama's API documentation shows."""

    def do_GET(self):
        body = json.dumps({"version": "0.12.6"}).encode() if self.path == "/api/version" else b"{}"
        self.send_response(200 if self.path == "/api/version" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_ollama_is_checked_only_when_learning_is_enabled(home):
    with LoopbackServer(_OllamaDouble) as server:
        with open(home.home / "config.toml", "a") as fh:
            fh.write(f'[learning]\nenabled = true\n[deploy]\nollama_host = "{server.url}"\n')
        code, _, checks = doctor()
        assert checks["ollama"]["status"] == "ok" and checks["ollama"]["details"]["version"] == "0.12.6"
        stack = checks["training_stack"]  # learning on: really imported, in a subprocess
        assert stack["status"] == "ok" and stack["details"]["imported"] is True
        assert stack["details"]["versions"]["torch"].startswith("2.")
    code, _, checks = doctor()
    assert checks["ollama"]["status"] == "fail" and "ollama serve" in checks["ollama"]["action"] and code == 1


def test_a_remote_ollama_is_not_contacted(home):
    with open(home.home / "config.toml", "a") as fh:
        fh.write('[learning]\nenabled = true\n[deploy]\nollama_host = "http://192.0.2.1:11434"\n')
    _, _, checks = doctor()
    assert checks["ollama"]["status"] == "skip" and "not on this machine" in checks["ollama"]["message"]


def test_a_nearly_full_disk_fails(tmp_path, monkeypatch):
    with small_tmpfs(tmp_path / "small", "8m") as data:
        monkeypatch.setenv("CC_CAPTURE_HOME", str(data / "cch"))
        monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))
        code, _, checks = doctor()
        assert checks["disk"]["status"] == "warn" and checks["disk"]["details"]["low"]  # 8 MB free
        fill(data)
        code, _, checks = doctor()
        assert checks["disk"]["status"] == "fail" and checks["disk"]["details"]["full"] and code == 1
