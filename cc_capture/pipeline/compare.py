"""`ccd compare` as a library call: Claude's held-out prompts replayed by the local model inside the
real Claude Code, each in a temporary git worktree at the commit Claude's session ran on, captured by
the same hooks (the session registered as local first), then compared pair by pair, stored, and
the divergences kept for DPO.

The local session's events reach the store through the daemon when it runs (this waits for them),
otherwise through an ingest pass made here, as `ccd ingest` would.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from cc_capture import homelock, reads, store
from cc_capture.compare import records
from cc_capture.compare.candidates import Candidate, pick
from cc_capture.datasets.inference import system_prompt_flag
from cc_capture.compare.launch import (LaunchError, LocalRun, check_ollama, claude_binary, local_invocation,
                                       run_print)
from cc_capture.compare.records import CompareStatus, ItemStatus
from cc_capture.compare.scores import SCORES, STEPS, first_divergence, score_pair
from cc_capture.compare.worktree import WorktreeError, worktree
from cc_capture.config import Settings
from cc_capture.datasets.preferences import compare_pair, rebased
from cc_capture.evaluate.scoring import mean_interval
from cc_capture.paths import Paths
from cc_capture.processes import interruptible
from cc_capture.records import Trace
from cc_capture.pipeline.ingest import ingest_once

CAPTURE_WAIT_S = 60.0  # how long a finished run's events may take to reach the store
STOPPED_WAIT_S = 10.0  # ... a run that failed or was stopped (its trace may never close)


class CompareError(Exception):
    """Nothing can be compared; the message says why and what to do."""


@dataclass(frozen=True)
class Replay:
    candidate: Candidate
    session_id: str
    worktree: str | None  # the worktree's top folder (resolved), where the local model's paths point
    run: LocalRun | None
    error: str | None


def run_compare(paths: Paths, settings: Settings, limit: int | None = None, tag: str | None = None,
                allow_edits: bool = False, on_item: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Compare the local model (`tag`, default the deployed alias) with Claude on up to `limit`
    held-out prompts; returns the report `ccd compare --json` prints. Ctrl-C marks it interrupted
    and removes the worktree, however the process was started."""
    interruptible()
    db = store.connect(paths.db)
    try:
        model = tag or settings.deploy.alias
        candidates, skipped = pick(db, settings.datasets.eval_percent, limit or settings.compare.limit)
        if not candidates:
            why = "; ".join(f"{n} {reason}" for reason, n in skipped.most_common()) or "no qualifying trace yet"
            raise CompareError("no prompt to compare: it takes a qualifying trace of the eval split whose session ran "
                               f"in a git repository still on disk at its commit ({why})")
        try:
            claude_binary(settings.compare)
            check_ollama(settings.deploy, model)
        except LaunchError as e:
            raise CompareError(str(e)) from None
        compare_id = f"cmp-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        records.start(db, compare_id, model, {"limit": limit or settings.compare.limit, "allow_edits": allow_edits,
                                              "max_turns": settings.compare.max_turns,
                                              "timeout_s": settings.compare.timeout_s})
        report_items: list[dict[str, Any]] = []
        try:
            for n, candidate in enumerate(candidates):
                if on_item:
                    on_item(n, len(candidates), candidate.prompt)
                replay = _replay(db, settings, candidate, model, allow_edits, compare_id)
                local_trace = None if replay.run is None else _await_capture(
                    db, paths, settings, replay.session_id,
                    CAPTURE_WAIT_S if replay.run.returncode == 0 else STOPPED_WAIT_S)
                report_items.append(_record(db, settings, compare_id, replay, local_trace))
        except BaseException as e:
            status = CompareStatus.INTERRUPTED if isinstance(e, KeyboardInterrupt) else CompareStatus.FAILED
            records.finish(db, compare_id, status, summarise(report_items), repr(e))
            raise
        summary = summarise(report_items)
        records.finish(db, compare_id, CompareStatus.DONE, summary)
        return {"compare_id": compare_id, "model": model, "items": report_items, "summary": summary,
                "dpo_pairs": summary["dpo_pairs"]}
    finally:
        db.conn.close()


def _replay(db: store.Database, settings: Settings, candidate: Candidate, model: str, allow_edits: bool,
            compare_id: str) -> Replay:
    """Run the prompt with the local model in a worktree at the session's commit (removed after)."""
    session_id = str(uuid.uuid4())
    top = None
    try:
        with worktree(candidate.root, candidate.commit) as tree:
            top = str(tree.resolve())
            if not (tree / candidate.subdir).is_dir():
                raise WorktreeError(f"the session's folder {candidate.subdir} is not in commit {candidate.commit[:12]}")
            invocation = local_invocation(settings.deploy, settings.compare, tree / candidate.subdir,
                                          prompt=candidate.prompt, tag=model, allow_edits=allow_edits,
                                          session_id=session_id,
                                          system_prompt=system_prompt_flag(settings.local.system_prompt))
            with store.transaction(db) as conn:
                store.register_local_session(conn, session_id, model, compare_id)
            return Replay(candidate, session_id, top, run_print(invocation), None)
    except (WorktreeError, LaunchError, OSError) as e:
        return Replay(candidate, session_id, top, None, str(e))


def _await_capture(db: store.Database, paths: Paths, settings: Settings, session_id: str,
                   wait_s: float) -> str | None:
    """The local session's trace once it is closed and its signals are computed (what there is of it
    after `wait_s`): ingested by the daemon, or here when no daemon holds the home."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            ingest_once(paths, settings)
        except homelock.HomeBusy:
            pass  # the daemon ingests it
        row = db.execute("SELECT t.trace_id, t.status, g.trace_id IS NOT NULL FROM traces t LEFT JOIN signals g "
                         "USING (trace_id) WHERE t.session_id = ? ORDER BY t.seq LIMIT 1", [session_id]).fetchone()
        if row and row[1] != "open" and row[2]:
            return row[0]
        if time.monotonic() > deadline:
            return row[0] if row else None
        time.sleep(0.2)


def _status(run: LocalRun, local: Trace | None) -> ItemStatus:
    if run.timed_out:  # stopped at the limit, captured or not (it may be stopped before its first hook)
        return ItemStatus.TIMEOUT
    if local is None:
        return ItemStatus.NOT_CAPTURED
    if "max turns" in (run.stdout + run.stderr).lower():
        return ItemStatus.MAX_TURNS
    if run.returncode != 0:
        return ItemStatus.ERROR
    if local.status != "completed" or not (local.final_response or "").strip():
        return ItemStatus.INCOMPLETE
    return ItemStatus.OK


def _record(db: store.Database, settings: Settings, compare_id: str, replay: Replay,
            local_trace_id: str | None) -> dict[str, Any]:
    """Score one pair, find its divergence, store it; its entry of the report."""
    claude = reads.trace(db, replay.candidate.trace_id)
    local = reads.trace(db, local_trace_id) if local_trace_id else None
    if replay.run is None:
        status, error = ItemStatus.FAILED, replay.error
    else:
        status = _status(replay.run, local)
        printed = replay.run.stderr.strip() or replay.run.stdout.strip()
        error = None if status is ItemStatus.OK else printed[-500:] or None
    scores: dict[str, Any] = dict.fromkeys((*SCORES, *STEPS)) | {"clean_ending": 0.0}
    divergence, pair = None, False
    if local is not None:
        local = rebased(local, replay.worktree, replay.candidate.root)  # its paths as the project's
        scores = score_pair(claude, local, status is ItemStatus.OK)
        divergence = first_divergence(claude, local)
        if divergence is not None:
            # only the rejected step is read here; the dataset builder rebuilds the pair with its system prompt
            made = compare_pair(claude, local, divergence, compare_id, settings.datasets.max_tool_output_tokens, "")
            rejected = made["rejected"][0]
            pair = bool(rejected["tool_calls"] or (rejected["content"] or "").strip())
    records.add_item(db, compare_id, claude.trace_id, replay.session_id, local_trace_id, replay.worktree, status,
                     scores, divergence, pair, error)
    return _entry(claude, local, {"trace_id": claude.trace_id, "local_session_id": replay.session_id,
                                  "local_trace_id": local_trace_id, "status": status.value, "error": error,
                                  "scores": scores, "divergence": divergence, "dpo_pair": pair})


def _entry(claude: Trace | None, local: Trace | None, item: dict[str, Any]) -> dict[str, Any]:
    """One item of the report: the two runs side by side (Claude's trace may be gone since), the scores,
    where they diverged."""
    return {"trace_id": item["trace_id"], "prompt": claude.prompt if claude else None,
            "claude": {"tool_sequence": claude.tool_sequence if claude else [],
                       "final_response": claude.final_response if claude else None},
            "local": {"trace_id": item["local_trace_id"], "session_id": item["local_session_id"],
                      "tool_sequence": local.tool_sequence if local else [],
                      "final_response": local.final_response if local else None, "status": item["status"],
                      "error": item["error"]},
            "scores": item["scores"], "divergence": item["divergence"], "dpo_pair": item["dpo_pair"]}


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Each score's mean over the items it applies to, with a 95% bootstrap interval (items are
    independent: one prompt each) and the count behind it."""
    scores = {}
    for name in (*SCORES, *STEPS):
        values = [float(i["scores"][name]) for i in items if i["scores"].get(name) is not None]
        scores[name] = {"mean": round(sum(values) / len(values), 4) if values else None,
                        "interval": mean_interval(values), "n": len(values)}
    statuses: dict[str, int] = {}
    for i in items:
        statuses[i["local"]["status"]] = statuses.get(i["local"]["status"], 0) + 1
    return {"items": len(items), "statuses": statuses, "scores": scores,
            "dpo_pairs": sum(1 for i in items if i["dpo_pair"])}


def comparison(db: store.Database, compare_id: str) -> dict[str, Any] | None:
    """A stored comparison in the shape of `run_compare`'s report."""
    row = db.execute("SELECT model, summary FROM comparisons WHERE compare_id = ?", [compare_id]).fetchone()
    if row is None:
        return None
    out = []
    for item in records.items(db, compare_id):
        claude = reads.trace(db, item["trace_id"])
        local = reads.trace(db, item["local_trace_id"]) if item["local_trace_id"] else None
        out.append(_entry(claude, local, item))
    summary = json.loads(row[1])
    return {"compare_id": compare_id, "model": row[0], "items": out, "summary": summary,
            "dpo_pairs": summary.get("dpo_pairs", 0)}
