"""Where a session ran: the git repository of its folder, the commit checked out, whether the tree
was dirty. The daemon asks `git` once it has stored a SessionStart (the hook never waits on it),
with a time limit, and `ccd compare` replays a prompt at that commit.

`git status` may refresh the index; `GIT_OPTIONAL_LOCKS=0` keeps it from taking the index lock, so
this never gets in the way of the user's own git commands.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

TIMEOUT_S = 3.0


class GitState(str, Enum):
    REPO = "repo"
    NOT_A_REPO = "not_a_repo"
    UNKNOWN = "unknown"  # git missing, timed out, the folder gone, or asked too late to be true


@dataclass(frozen=True)
class GitInfo:
    state: GitState
    root: str | None = None  # the repository's top folder
    commit: str | None = None  # None in a repository with no commit yet
    dirty: bool | None = None  # changed or untracked files
    branch: str | None = None  # None when detached
    reason: str | None = None  # why the state is unknown


def git(args: list[str], cwd: Path | str, timeout_s: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run `git ARGS` in `cwd` (text output; raises OSError without git, TimeoutExpired)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s,
                          stdin=subprocess.DEVNULL)


def probe(folder: str | Path, timeout_s: float = TIMEOUT_S) -> GitInfo:
    """The git state of `folder` now."""
    if not Path(folder).is_dir():
        return GitInfo(GitState.UNKNOWN, reason="the folder does not exist")
    try:
        top = git(["rev-parse", "--show-toplevel"], folder, timeout_s)
        if top.returncode != 0:
            if "not a git repository" in top.stderr:
                return GitInfo(GitState.NOT_A_REPO)
            return GitInfo(GitState.UNKNOWN, reason=top.stderr.strip()[:200] or f"git exited {top.returncode}")
        status = git(["status", "--porcelain=v2", "--branch", "--untracked-files=normal"], folder, timeout_s)
    except OSError as e:
        return GitInfo(GitState.UNKNOWN, reason=f"git cannot run ({e.strerror or e})")
    except subprocess.TimeoutExpired:
        return GitInfo(GitState.UNKNOWN, reason=f"git took longer than {timeout_s:g} s")
    if status.returncode != 0:
        return GitInfo(GitState.UNKNOWN, root=top.stdout.strip(), reason=status.stderr.strip()[:200])
    commit = branch = None
    dirty = False
    for line in status.stdout.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2]
            commit = None if commit == "(initial)" else commit
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
            branch = None if branch == "(detached)" else branch
        elif line and not line.startswith("#"):
            dirty = True
    return GitInfo(GitState.REPO, root=top.stdout.strip(), commit=commit, dirty=dirty, branch=branch)
