"""Where each session ran (git state at SessionStart, the branch of imported ones) and who answered in
it (origin claude|local): a local model's session never counts toward training."""

import json
import subprocess
import time

import pytest

from cc_capture import store
from cc_capture.config import DatasetSettings, LearningSettings, Settings, SystemPromptChoice
from cc_capture.pipeline.ingest import locate_sessions
from cc_capture.pipeline.transcripts import import_transcripts
from cc_capture.scheduler.state import qualifying_since
from cc_capture.transcripts.discovery import discover
from conftest import db_rows, emit, ingest_all, traces_json


def git_repo(path, dirty=False):
    path.mkdir(parents=True)
    run = lambda *a: subprocess.run(["git", *a], cwd=path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    (path / "a.txt").write_text("one\n")
    run("add", "a.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    if dirty:
        (path / "new.txt").write_text("untracked\n")
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def session(paths, session_id, cwd, prompt="Explain how the parser handles errors", answer=None, **start):
    """A whole session as the hooks send it: start, one prompt with a Read, stop, end."""
    base = {"session_id": session_id, "transcript_path": f"/nonexistent/{session_id}.jsonl", "cwd": str(cwd)}
    prompt_id = f"p-{session_id}"
    for payload in [
        dict(base, hook_event_name="SessionStart", source="startup", **start),
        dict(base, hook_event_name="UserPromptSubmit", prompt_id=prompt_id, prompt=prompt),
        dict(base, hook_event_name="PreToolUse", prompt_id=prompt_id, tool_name="Read", tool_use_id=f"t-{session_id}",
             tool_input={"file_path": "a.txt"}),
        dict(base, hook_event_name="PostToolUse", prompt_id=prompt_id, tool_name="Read", tool_use_id=f"t-{session_id}",
             tool_input={"file_path": "a.txt"}, tool_response={"file": {"content": "one"}}),
        dict(base, hook_event_name="Stop", prompt_id=prompt_id,
             last_assistant_message=answer or "The parser collects errors and reports them all at the end of a run."),
        dict(base, hook_event_name="SessionEnd", reason="other"),
    ]:
        assert emit(paths, payload).returncode == 0
    return prompt_id


def test_session_start_records_git_commit_dirty_tree_and_no_repository(paths, tmp_path):
    clean_commit = git_repo(tmp_path / "clean")
    (tmp_path / "clean" / "sub").mkdir()
    dirty_commit = git_repo(tmp_path / "dirty", dirty=True)
    (tmp_path / "plain").mkdir()
    session(paths, "s-clean", tmp_path / "clean" / "sub")
    session(paths, "s-dirty", tmp_path / "dirty")
    session(paths, "s-plain", tmp_path / "plain")
    ingest_all(paths)
    rows = {r[0]: r[1:] for r in db_rows(paths, "SELECT session_id, git_state, git_root, git_commit, git_dirty, "
                                                "git_branch FROM sessions")}
    assert rows["s-clean"] == ("repo", str(tmp_path / "clean"), clean_commit, 0, "main")
    assert rows["s-dirty"] == ("repo", str(tmp_path / "dirty"), dirty_commit, 1, "main")
    assert rows["s-plain"] == ("not_a_repo", None, None, None, None)


def test_a_session_ingested_long_after_it_started_is_not_guessed(paths, tmp_path):
    git_repo(tmp_path / "repo")
    session(paths, "s-late", tmp_path / "repo")
    ingest_all(paths)
    db = store.connect(paths.db)
    with store.transaction(db) as conn:  # as a backlog would leave it: located afresh, an hour on
        conn.execute("UPDATE sessions SET git_state = NULL, git_commit = NULL")
    assert locate_sessions(db, now=time.time() + 3600) == 1
    assert db.execute("SELECT git_state, git_commit FROM sessions").fetchone() == ("unknown", None)
    assert locate_sessions(db) == 0  # looked at once
    db.conn.close()


def test_imported_sessions_record_the_transcript_branch(paths, shared):
    db = store.connect(paths.db)
    import_transcripts(db, discover([shared / "transcripts" / "spotter-2.1.39"]), Settings())
    branches = {r[0] for r in db.execute("SELECT git_branch FROM sessions")}
    assert "spotter-4te" in branches
    assert db.execute("SELECT count(*) FROM sessions WHERE git_state IS NOT NULL").fetchone() == (0,)
    db.conn.close()


def test_local_sessions_never_count_toward_training(paths, tmp_path):
    git_repo(tmp_path / "repo")
    db = store.connect(paths.db)
    with store.transaction(db) as conn:  # as `ccd compare` does before it starts Claude Code
        store.register_local_session(conn, "s-local", "cc-capture:latest", "cmp-1")
    with store.transaction(db) as conn:  # a model cc-capture deployed, named by the session's own start event
        conn.execute("INSERT INTO deployments (action, model_version, tag, alias, host, status, started_at, ended_at) "
                     "VALUES ('deploy', 1, 'cc-capture:v1', 'cc-capture:latest', 'http://127.0.0.1:11434', "
                     "'succeeded', 0, 0)")
    session(paths, "s-claude", tmp_path / "repo")
    session(paths, "s-local", tmp_path / "repo")
    session(paths, "s-named", tmp_path / "repo", model="cc-capture:v1")
    # `claude --model cc-capture` by hand: Ollama serves cc-capture:latest and echoes the name as sent
    session(paths, "s-untagged", tmp_path / "repo", model="cc-capture")
    session(paths, "s-other", tmp_path / "repo", model="cc-capture-other")
    ingest_all(paths)
    origins = dict(db.execute("SELECT session_id, origin FROM sessions"))
    assert origins == {"s-claude": "claude", "s-local": "local", "s-named": "local", "s-untagged": "local",
                       "s-other": "claude"}
    gates = {r[0]: (r[1], json.loads(r[2])) for r in db.execute(
        "SELECT t.session_id, g.qualifies, g.gate_reasons FROM signals g JOIN traces t USING (trace_id)")}
    assert gates["s-claude"][0] == 1
    for local in ("s-local", "s-named", "s-untagged"):
        assert gates[local][0] == 0
        assert "exclude: the local model's session (origin local), not Claude's" in gates[local][1]
    assert qualifying_since(db, None, LearningSettings().include_synthetic) == 2  # s-claude, s-other
    listed = {t["session_id"]: t["origin"] for t in traces_json(db)}
    assert listed == {"s-claude": "claude", "s-local": "local", "s-named": "local", "s-untagged": "local",
                      "s-other": "claude"}
    db.conn.close()


def test_a_local_trace_rated_up_is_never_a_chosen_example(paths, tmp_path):
    pytest.importorskip("datasets", reason="building a dataset needs the training extra")
    from cc_capture.datasets.build import build

    git_repo(tmp_path / "repo")
    db = store.connect(paths.db)
    with store.transaction(db) as conn:
        store.register_local_session(conn, "s-local", "cc-capture:latest")
    session(paths, "s-claude", tmp_path / "repo", answer="The parser stops at the first error and reports it.")
    session(paths, "s-local", tmp_path / "repo", answer="The parser never reports errors at all, it just goes on.")
    session(paths, "s-other", tmp_path / "repo", prompt="List the modules of this project and what each does")
    ingest_all(paths)
    by_session = dict(db.execute("SELECT session_id, trace_id FROM traces"))
    with store.transaction(db) as conn:  # same prompt: the local answer rated up, Claude's down
        store.feedback_set(conn, by_session["s-local"], "up", None)
        store.feedback_set(conn, by_session["s-claude"], "down", None)
    ingest_all(paths)
    built = build(db, paths.datasets, DatasetSettings(), SystemPromptChoice.COMPACT, dpo=True)
    assert "rating" not in (built.manifest.origins or {})
    db.conn.close()
