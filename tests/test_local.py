"""`ccd local` refuses clearly when nothing is deployed or Ollama is not there; the run itself (the
real Claude Code on a scripted stand-in for Ollama's `/v1/messages`, sending what `ccd calibrate`
recorded) is tested in test_calibrate.py, beside the calibration it is compared with."""

import subprocess
import sys
import time

import pytest

from cc_capture.deploy import records
from cc_capture.loopback import free_port
from conftest import REPO
from support.claude import claude_env, ensure_claude
from support.scripted_api import ScriptedAPI

pytestmark = pytest.mark.claude
TAG = "cc-capture:v3"


def ccd_local(paths, tmp_path, api_url, *args, env_extra=None):
    """`ccd local ARGS` as a user runs it: its own process, in a project folder, Claude Code in a
    temporary home; `[compare] claude` is the pinned CLI and `[deploy] ollama_host` the stand-in."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    env = claude_env(home, paths.home, api_url) | {
        "CC_CAPTURE_COMPARE__CLAUDE": str(ensure_claude()), "CC_CAPTURE_DEPLOY__OLLAMA_HOST": api_url,
        "PYTHONPATH": str(REPO)} | (env_extra or {})
    return subprocess.run([sys.executable, "-m", "cc_capture", "local", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def deployed(db, tag=TAG):
    """A deployment row as `ccd deploy` records it (the alias cc-capture:latest points at `tag`)."""
    db.execute("INSERT INTO models (version, status, base_model, path, sha256, created_at, status_at) "
               "VALUES (3, 'champion', 'tiny', '/m', 'sha-3', 0, 0)")
    records.record(db, action=records.Action.DEPLOY, model_version=3, tag=tag, alias="cc-capture:latest",
                   host="http://127.0.0.1:11434", status=records.Outcome.SUCCEEDED, started_at=time.time())


def test_nothing_deployed_says_what_to_do(paths, db, tmp_path):
    done = ccd_local(paths, tmp_path, "http://127.0.0.1:9", "-p", "hi")
    assert done.returncode == 1 and "no model is deployed as cc-capture:latest" in done.stderr
    assert "ccd pipeline run" in done.stderr


def test_ollama_not_reachable_says_so(paths, db, tmp_path):
    deployed(db)
    done = ccd_local(paths, tmp_path, f"http://127.0.0.1:{free_port()}", "-p", "hi")
    assert done.returncode == 1 and "Ollama is not running at" in done.stderr
    assert not db.execute("SELECT * FROM local_sessions").fetchall()  # nothing was started


def test_model_missing_in_ollama_says_so(paths, db, tmp_path):
    deployed(db)
    with ScriptedAPI(ollama_models=["other:latest"]) as ollama:
        done = ccd_local(paths, tmp_path, ollama.url, "-p", "hi")
    assert done.returncode == 1 and f"the model {TAG} is not in Ollama" in done.stderr
    assert not ollama.requests
