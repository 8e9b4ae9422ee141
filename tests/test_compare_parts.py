"""The parts of `ccd compare` that need no Claude Code: how Claude Code is started on the local model
(the command, the environment Ollama's documentation asks for, the tool restriction, the limits of a
-p run), the worktree's cleanup, the pair scores and where two runs diverge."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cc_capture.compare.launch import LaunchError, local_invocation, run_print
from cc_capture.compare.scores import first_divergence, lcs_pairs, score_pair
from cc_capture.compare.worktree import worktree
from cc_capture.datasets.preferences import rebased
from cc_capture.config import CompareSettings, DeploySettings
from support.traces import call as made_call, trace


@pytest.fixture
def fake_claude(tmp_path) -> Path:
    """A stand-in `claude` for the command line itself (the real CLI runs in test_compare.py)."""
    path = tmp_path / "bin" / "claude"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexec python3 -c 'import sys, os, time; time.sleep(float(os.environ.get(\"SLEEP\", 0)));"
                    " print(sys.stdin.read())'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_print_invocation_points_claude_code_at_ollama_read_only(fake_claude, tmp_path):
    deploy = DeploySettings(ollama_host="127.0.0.1:11500", num_ctx=32768)
    user_env = {"PATH": "/usr/bin", "HOME": "/home/u", "ANTHROPIC_API_KEY": "sk-real", "ANTHROPIC_MODEL": "opus",
                "CLAUDE_CODE_USE_BEDROCK": "1", "CLAUDE_CODE_OAUTH_TOKEN": "tok"}
    inv = local_invocation(deploy, CompareSettings(claude=str(fake_claude), max_turns=7, timeout_s=30), tmp_path,
                           prompt="-x what does this do?", environ=user_env)
    argv = inv.argv
    assert argv[0] == str(fake_claude)
    assert argv[argv.index("--model") + 1] == inv.tag == "cc-capture:latest"
    assert argv[argv.index("--session-id") + 1] == inv.session_id
    assert argv[argv.index("--tools") + 1] == "Read,Grep,Glob"
    assert argv[argv.index("--allowedTools") + 1] == "Read,Grep,Glob"
    assert argv[argv.index("--max-turns") + 1] == "7" and "-p" in argv
    assert argv[argv.index("--permission-prompts") + 1] == "none"
    assert "--permission-mode" not in argv and "--system-prompt" not in argv
    assert "-x what does this do?" not in argv and inv.stdin == "-x what does this do?"
    assert inv.env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:11500"
    assert inv.env["ANTHROPIC_AUTH_TOKEN"] == "ollama" and inv.env["ANTHROPIC_API_KEY"] == ""
    assert inv.env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == inv.env["CLAUDE_CODE_SUBAGENT_MODEL"] == "cc-capture:latest"
    assert inv.env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "32768"
    for foreign in ("ANTHROPIC_MODEL", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_OAUTH_TOKEN"):
        assert foreign not in inv.env
    assert inv.env["HOME"] == "/home/u" and inv.cwd == tmp_path and inv.timeout_s == 30


def test_edits_tag_and_system_prompt(fake_claude, tmp_path):
    inv = local_invocation(DeploySettings(model_name="mine"), CompareSettings(claude=str(fake_claude)), tmp_path,
                           prompt="fix it", tag="qwen3:8b", allow_edits=True, max_turns=3, timeout_s=5,
                           system_prompt="You are terse.", session_id="0b7c7c52-55d4-4d4b-a9c5-1f6c7d3a2f10")
    argv = inv.argv
    assert argv[argv.index("--tools") + 1] == "Read,Grep,Glob,Bash,Edit,Write"
    assert argv[argv.index("--allowedTools") + 1] == "Read,Grep,Glob"  # Bash is never pre-approved
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert argv[argv.index("--system-prompt") + 1] == "You are terse."
    assert argv[argv.index("--model") + 1] == "qwen3:8b" and inv.session_id == "0b7c7c52-55d4-4d4b-a9c5-1f6c7d3a2f10"
    assert inv.env["ANTHROPIC_BASE_URL"] == DeploySettings().host()


def test_interactive_invocation_has_no_limits(fake_claude, tmp_path):
    inv = local_invocation(DeploySettings(), CompareSettings(claude=str(fake_claude)), tmp_path,
                           resume="8d0c7d52-55d4-4d4b-a9c5-1f6c7d3a2f10", extra_args=["--verbose"])
    assert "-p" not in inv.argv and "--max-turns" not in inv.argv and "--permission-prompts" not in inv.argv
    assert inv.timeout_s is None and inv.stdin is None and inv.argv[-1] == "--verbose"
    # a resumed session is forked into a new one, whose id is known before it starts
    assert inv.argv[inv.argv.index("--resume") + 1] == "8d0c7d52-55d4-4d4b-a9c5-1f6c7d3a2f10"
    assert "--fork-session" in inv.argv and inv.argv[inv.argv.index("--session-id") + 1] == inv.session_id


def test_missing_claude_says_what_to_do(tmp_path):
    with pytest.raises(LaunchError, match="npm install -g @anthropic-ai/claude-code"):
        local_invocation(DeploySettings(), CompareSettings(claude=str(tmp_path / "nope")), tmp_path, prompt="x")


def test_run_print_passes_the_prompt_and_stops_at_the_time_limit(fake_claude, tmp_path):
    compare = CompareSettings(claude=str(fake_claude))
    done = run_print(local_invocation(DeploySettings(), compare, tmp_path, prompt="hello there"))
    assert (done.returncode, done.stdout.strip(), done.timed_out) == (0, "hello there", False)
    slow = local_invocation(DeploySettings(), compare, tmp_path, prompt="x", timeout_s=0.5,
                            environ=dict(os.environ, SLEEP="60"))
    stopped = run_print(slow)
    assert stopped.timed_out and stopped.returncode is None


def test_the_worktree_is_removed_when_the_replay_fails(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, text=True)  # noqa: E731
    git("init", "-q", "-b", "main")
    (repo / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    first = git("rev-parse", "HEAD").stdout.strip()
    (repo / "a.txt").write_text("two\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    with pytest.raises(KeyboardInterrupt):
        with worktree(repo, first) as tree:
            assert (tree / "a.txt").read_text() == "one\n"  # the session's commit, not the branch's
            (tree / "a.txt").write_text("changed by the local model\n")
            raise KeyboardInterrupt
    assert not tree.exists() and not tree.parent.exists()
    assert git("worktree", "list", "--porcelain").stdout.count("worktree ") == 1
    assert (repo / "a.txt").read_text() == "two\n" and git("status", "--porcelain").stdout == ""


def call(name, batch, **args):
    return made_call(name, args, batch=batch, tool_use_id=f"{name}-{batch}-{len(args)}")


def test_scores_and_divergence_by_hand():
    assert lcs_pairs(["Grep", "Read", "Read"], ["Read", "Read"]) == [(1, 0), (2, 1)]
    claude = trace([call("Grep", 1, pattern="def parse"), call("Read", 2, file_path="/p/a.py"),
                    call("Read", 3, file_path="/p/b.py")], "the tests pass")
    local = rebased(trace([call("Read", 1, file_path="/w/a.py"), call("Read", 2, file_path="/w/c.py")],
                          "all tests pass", "l"), "/w", "/p")
    s = score_pair(claude, local, clean=False)
    assert s["tool_sequence_similarity"] == round(2 / 3, 4) and s["first_tool_agreement"] == 0.0
    assert s["tool_set_overlap"] == 0.5 and s["answer_similarity"] == round(2 / 3, 4)
    # pairs: a.py with a.py (1), b.py with c.py (difflib's ratio of "/p/b.py" and "/p/c.py")
    assert 0.8 < s["argument_agreement"] < 1.0 and s["behaviour_cosine"] is None and s["clean_ending"] == 0.0
    assert first_divergence(claude, local) == 0
    same_start = rebased(trace([call("Grep", 1, pattern="def parse"), call("Read", 2, file_path="/w/a.py")], "x"),
                         "/w", "/p")
    assert first_divergence(claude, same_start) == 2  # it answered where Claude read b.py
    assert first_divergence(claude, claude) is None
    nothing = score_pair(trace([], "hi"), trace([], "hi"), clean=True)
    assert (nothing["tool_sequence_similarity"], nothing["first_tool_agreement"], nothing["tool_set_overlap"],
            nothing["argument_agreement"]) == (1.0, 1.0, 1.0, None)


@pytest.fixture
def replayable(paths, tmp_path):
    """One qualifying Claude trace of the eval split, in a git repository still at its commit: what
    `ccd compare` replays (captured through the real hook emitter and ingest)."""
    from conftest import ingest_all
    from test_compare import held_out_session_ids
    from test_session_origin import git_repo, session

    repo = tmp_path / "repo"
    git_repo(repo)
    session(paths, held_out_session_ids(1)[0], repo)
    ingest_all(paths)
    return repo


def worktrees(repo: Path) -> list[str]:
    listed = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True)
    return [line.split(" ", 1)[1] for line in listed.stdout.splitlines() if line.startswith("worktree ")]


@pytest.mark.parametrize("sigint_at_start", [signal.SIG_DFL, signal.SIG_IGN], ids=["default", "ignored"])
def test_ctrl_c_marks_the_comparison_interrupted_and_removes_the_worktree(paths, replayable, fake_claude,
                                                                          sigint_at_start):
    """Also when ccd starts with SIGINT ignored, as a background job of a non-interactive shell does
    (the full suite run in the background once left the comparison `running` and its worktree behind)."""
    from cc_capture import store
    from support.scripted_api import ScriptedAPI

    with ScriptedAPI(ollama_models=["cc-capture:latest"]) as ollama:
        env = dict(os.environ, CC_CAPTURE_COMPARE__CLAUDE=str(fake_claude), CC_CAPTURE_DEPLOY__OLLAMA_HOST=ollama.url,
                   SLEEP="600")  # the stand-in Claude Code runs until it is stopped
        proc = subprocess.Popen([sys.executable, "-m", "cc_capture", "compare"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, sigint_at_start))
        db = store.connect(paths.db)
        try:
            deadline = time.monotonic() + 60
            # registered just before Claude Code starts, in its worktree
            while not db.execute("SELECT count(*) FROM local_sessions").fetchone()[0]:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.1)
            (_, tree) = worktrees(replayable)
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        rows = db.execute("SELECT status, error FROM comparisons").fetchall()
        items = db.execute("SELECT count(*) FROM comparison_items").fetchone()[0]
        db.conn.close()
    assert proc.returncode != 0
    assert rows == [("interrupted", "KeyboardInterrupt()")] and items == 0
    assert worktrees(replayable) == [str(replayable)] and not Path(tree).exists() and not Path(tree).parent.exists()


def test_an_item_stopped_at_the_time_limit_is_recorded_timeout(paths, replayable, fake_claude, monkeypatch):
    from cc_capture.config import Settings
    from cc_capture.pipeline import compare
    from support.scripted_api import ScriptedAPI

    monkeypatch.setenv("SLEEP", "600")
    monkeypatch.setattr(compare, "STOPPED_WAIT_S", 0.0)  # nothing of a stopped stand-in reaches the store
    with ScriptedAPI(ollama_models=["cc-capture:latest"]) as ollama:
        settings = Settings(deploy=DeploySettings(ollama_host=ollama.url),
                            compare=CompareSettings(claude=str(fake_claude), timeout_s=0.5))
        report = compare.run_compare(paths, settings)
    (item,) = report["items"]
    assert item["local"]["status"] == "timeout" and item["scores"]["clean_ending"] == 0.0 and not item["dpo_pair"]
    assert report["summary"]["statuses"] == {"timeout": 1}
    assert worktrees(replayable) == [str(replayable)]
