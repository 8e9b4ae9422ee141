"""A temporary `git worktree` of a project at the commit a session ran on: the local model replays the
prompt there, so the user's own checkout (files, index, branches) is never touched. It is removed
afterwards, also on an error or Ctrl-C (and `git worktree prune` forgets it)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cc_capture.gitinfo import git

TIMEOUT_S = 120.0


class WorktreeError(Exception):
    """The worktree cannot be made; the message says why."""


def has_commit(root: str | Path, commit: str) -> bool:
    """The repository at `root` is on disk and holds `commit`."""
    if not Path(root).is_dir():
        return False
    try:
        return git(["cat-file", "-e", f"{commit}^{{commit}}"], root).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def worktree(root: str | Path, commit: str) -> Iterator[Path]:
    """A detached worktree of the repository at `root`, checked out at `commit`, in a private
    temporary folder; removed when the block ends, however it ends."""
    parent = Path(tempfile.mkdtemp(prefix="cc-capture-compare-"))  # 0700
    path = parent / "worktree"
    try:
        made = git(["worktree", "add", "--detach", str(path), commit], root, TIMEOUT_S)
        if made.returncode != 0:
            raise WorktreeError(f"git worktree add failed in {root}: {made.stderr.strip()}")
        yield path
    finally:
        try:
            git(["worktree", "remove", "--force", "--force", str(path)], root, TIMEOUT_S)
        finally:
            shutil.rmtree(parent, ignore_errors=True)
            git(["worktree", "prune"], root, TIMEOUT_S)
