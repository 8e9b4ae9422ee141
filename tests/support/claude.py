"""The real Claude Code CLI, pinned, installed once into a cache, run in `-p` mode offline."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

CLAUDE_CODE_VERSION = "2.1.328"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cc-capture-tests" / f"claude-code-{CLAUDE_CODE_VERSION}"


def ensure_claude() -> Path:
    """Install @anthropic-ai/claude-code@<pinned> with npm into the cache (once) and return its binary."""
    prefix = cache_dir()
    binary = prefix / "node_modules" / ".bin" / "claude"
    if binary.exists():
        return binary
    prefix.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(prefix),
         f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"],
        check=True, timeout=600,
    )
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout
    if CLAUDE_CODE_VERSION not in version:
        raise RuntimeError(f"installed Claude Code reports {version!r}, expected {CLAUDE_CODE_VERSION}")
    return binary


@dataclass
class ClaudeRun:
    returncode: int
    stdout: str
    stderr: str


def claude_env(home: Path, cc_home: Path, api_url: str) -> dict[str, str]:
    """An environment that keeps Claude Code offline, in a temporary HOME, talking to our API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "CC_CAPTURE_"))}
    env.update(
        HOME=str(home),
        CC_CAPTURE_HOME=str(cc_home),
        ANTHROPIC_BASE_URL=api_url,
        ANTHROPIC_API_KEY="sk-test-not-a-real-key",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
    )
    env.pop("XDG_DATA_HOME", None)
    env.pop("XDG_CONFIG_HOME", None)
    return env


def run_claude(binary: Path, env: dict[str, str], cwd: Path, prompt: str, *args: str, timeout: float = 180) -> ClaudeRun:
    p = subprocess.run(
        [str(binary), "-p", prompt, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return ClaudeRun(p.returncode, p.stdout, p.stderr)
