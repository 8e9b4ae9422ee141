"""How Claude Code is started on the local model (cc_capture.compare.launch): the command, the
environment Ollama's documentation asks for, the tool restriction, and the limits of a -p run."""

import os
import stat
import sys
from pathlib import Path

import pytest

from cc_capture.compare.launch import LaunchError, local_invocation, run_print
from cc_capture.config import CompareSettings, DeploySettings


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
                           extra_args=["--resume"])
    assert "-p" not in inv.argv and "--max-turns" not in inv.argv and "--permission-prompts" not in inv.argv
    assert inv.timeout_s is None and inv.stdin is None and inv.argv[-1] == "--resume"


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
