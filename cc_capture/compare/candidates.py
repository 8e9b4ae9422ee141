"""Which of Claude's prompts `ccd compare` replays: real, qualifying traces of the eval split (never
training data, nor a session an earlier comparison spent for evaluation), whose session ran in a git repository that is still on disk and still holds the
commit it ran on. Newest first."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from cc_capture import store
from cc_capture.compare.worktree import has_commit
from cc_capture.datasets.build import split_of


@dataclass(frozen=True)
class Candidate:
    trace_id: str
    session_id: str
    prompt: str
    root: str  # the repository's top folder
    commit: str
    subdir: str  # where in the repository the session ran ("." for its top)
    dirty: bool  # the tree had changes when the session started: the replay sees the commit without them


def pick(db: store.Database, eval_percent: int, limit: int) -> tuple[list[Candidate], Counter]:
    """Up to `limit` candidates, and why the other qualifying traces were passed over."""
    skipped: Counter = Counter()
    spent = store.spent_sessions(db)
    found: list[Candidate] = []
    rows = db.execute(
        "SELECT t.trace_id, t.session_id, t.prompt, s.cwd, s.git_state, s.git_root, s.git_commit, s.git_dirty "
        "FROM traces t JOIN signals g USING (trace_id) JOIN sessions s USING (session_id) "
        f"WHERE g.qualifies = 1 AND t.synthetic = 0 AND {store.NOT_LOCAL} ORDER BY t.started_at DESC, t.seq DESC")
    for trace_id, session_id, prompt, cwd, state, root, commit, dirty in rows:
        if session_id in spent:
            skipped["spent by an earlier comparison (its pair is training data)"] += 1
        elif split_of(session_id, eval_percent) != "eval":
            skipped["in the training split"] += 1
        elif state != "repo" or not commit:
            skipped["no git commit recorded for its session"] += 1
        elif not has_commit(root, commit):
            skipped["its repository or commit is no longer on disk"] += 1
        else:
            subdir = os.path.relpath(cwd, root) if cwd else "."
            found.append(Candidate(trace_id, session_id, prompt or "", root, commit,
                                   "." if subdir.startswith("..") else subdir, bool(dirty)))
            if len(found) == limit:
                break
    return found, skipped
