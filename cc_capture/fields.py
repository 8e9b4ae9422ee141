"""What each stored column means, written once, for `ccd browse`'s table and column descriptions.

A column that is also a `--json` key of the read model (a trace's `prompt`, a call's `batch`, every
column of `runs`) takes its text from the record's annotation in `cc_capture.records`, so each
meaning is written in one place; the other columns are described here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cc_capture import records

# The `--json` keys of the read model, described on the records themselves (cc_capture.records).
# `ccd traces list --json` (and `search`, which adds `snippet`)
TRACE: dict[str, str] = records.descriptions(records.TraceSummary)
# `ccd traces show --json`: a trace's own keys beyond TRACE
TRACE_DETAIL: dict[str, str] = {k: v for k, v in records.descriptions(records.Trace).items() if k not in TRACE}
TOOL_CALL: dict[str, str] = records.descriptions(records.ToolCall)
SUBAGENT: dict[str, str] = records.descriptions(records.Subagent)


@dataclass(frozen=True)
class Table:
    description: str
    columns: dict[str, str] = field(default_factory=dict)
    hidden: bool = False  # bookkeeping: kept out of the browser's table list


def _pick(doc: dict[str, str], *names: str) -> dict[str, str]:
    return {n: doc[n] for n in names}


_TIMED = {"started_at": "When it started (Unix seconds)", "ended_at": "When it ended (Unix seconds)"}

# Columns every table of store.REDACTED_TABLES has.
_REDACTED = {"redactor_version": "Version of the redaction rules that wrote the row (cc_capture.redact.VERSION)"}

TABLES: dict[str, Table] = {
    "traces": Table(
        "One row per user prompt: the prompt, the final answer, how the turn ended",
        _pick(TRACE, "trace_id", "session_id", "prompt", "started_at", "ended_at", "status", "final_response",
              "error") | {
            "prompt_id": "Claude Code's prompt id (null for prompts of versions that had none)",
            "seq": "Position of the trace in its session",
            "n_batches": "Assistant messages that made tool calls",
            "source": TRACE_DETAIL["source"],
            "model": TRACE_DETAIL["model"],
            "synthetic": TRACE_DETAIL["synthetic"],
        } | _REDACTED),
    "tool_calls": Table(
        "Every tool call, with its input, output or error, in the order the model made them",
        _pick(TOOL_CALL, "tool_use_id", "name", "input", "output", "is_error", "error", "status", "agent_id",
              "batch", "started_at", "duration_ms", "source") | {
            "trace_id": "The trace the call belongs to",
            "session_id": TRACE["session_id"],
            "seq": "Position of the call in its trace",
            "ended_at": "When the call ended (Unix seconds)",
            "permission_requested": "Whether Claude Code asked the user for permission",
        } | _REDACTED),
    "subagents": Table(
        "Subagents, each nested under the Agent/Task call that started it",
        _pick(SUBAGENT, "agent_id", "agent_type", "parent_tool_use_id", "background", "started_at", "ended_at",
              "final_response") | {
            "session_id": TRACE["session_id"],
            "trace_id": "The trace whose call started it",
            "transcript_path": "The subagent's transcript file",
            "source": TRACE_DETAIL["source"],
        } | _REDACTED),
    "reasoning": Table("The assistant's text before each tool call, read from the transcripts", {
        "tool_use_id": "The call the text preceded",
        "text": TOOL_CALL["reasoning"],
    } | _REDACTED),
    "sessions": Table("Claude Code sessions", {
        "session_id": TRACE["session_id"],
        "cwd": "The working folder",
        "transcript_path": "The session's transcript file",
        "model": "The model at session start",
        "source": "How the session started (startup, resume, clear, compact)",
        "permission_mode": "Claude Code's permission mode",
        "started_at": _TIMED["started_at"],
        "last_event_at": "The last event seen (Unix seconds)",
        "ended_at": _TIMED["ended_at"],
        "end_reason": "Why the session ended (SessionEnd's reason)",
        "n_compactions": "How often the context was compacted",
        "origin": TRACE["origin"],
        "git_state": "The working folder at SessionStart: repo, not_a_repo or unknown (null: not looked at, "
                     "as for imported sessions)",
        "git_root": "The top folder of its git repository",
        "git_commit": "The commit checked out at SessionStart",
        "git_dirty": "1 when the tree had changed or untracked files at SessionStart",
        "git_branch": "The branch checked out (at SessionStart, or as the transcript names it)",
    }),
    "local_sessions": Table("Sessions of the local model, registered before they started (`ccd compare`)", {
        "session_id": TRACE["session_id"],
        "model": "The Ollama model it ran",
        "compare_id": "The comparison that ran it",
        "registered_at": "When it was registered (Unix seconds)",
    }),
    "comparisons": Table("`ccd compare`: Claude's held-out prompts replayed by the local model inside Claude Code", {
        "compare_id": "The comparison's id",
        "model": "The Ollama model compared with Claude",
        "status": "running, done, failed or interrupted",
        "started_at": _TIMED["started_at"],
        "ended_at": _TIMED["ended_at"],
        "settings": "Its limits: prompts, allow_edits, max_turns, timeout_s (JSON)",
        "summary": "Each score's mean with its 95% bootstrap interval and count; statuses; DPO pairs (JSON)",
        "error": "Why it stopped early",
    }),
    "comparison_items": Table("One prompt of a comparison: Claude's trace, the local model's, their scores", {
        "compare_id": "The comparison",
        "trace_id": "Claude's trace",
        "local_session_id": "The local model's session",
        "local_trace_id": "The local model's trace (null if none was captured)",
        "worktree": "The folder the local model ran in (removed since): its paths are read as the project's",
        "status": "How the local run ended: ok, error, timeout, max_turns, incomplete, not_captured, failed",
        "scores": "The pair's scores (JSON; README: Comparing with Claude)",
        "divergence": "The step (from 0) where the local model left Claude's path; null if it never did",
        "dpo_pair": "1 when that divergence is a preference pair for `ccd dataset build --dpo`",
        "error": "What the local run printed when it did not end cleanly",
    }),
    "signals": Table("Reasoning signals, behaviour vector and quality-gate decision of each closed trace", {
        "trace_id": "The trace",
        "extractor_version": TRACE_DETAIL["extractor_version"],
        "computed_at": "When they were computed (Unix seconds)",
        "signals": TRACE_DETAIL["signals"],
        "vector": TRACE_DETAIL["vector"],
        "qualifies": "1 when the quality gates let the trace into training",
        "gate_reasons": TRACE_DETAIL["gate_reasons"],
    }),
    "feedback": Table("Ratings given with `ccd rate` or /cc-capture:rate", {
        "trace_id": "The rated trace",
        "rating": "up or down",
        "note": "Why, in the user's words",
        "rated_at": "When (Unix seconds)",
    }),
    "message_usage": Table("Token usage, once per assistant message", {
        "message_id": "Claude's message id",
        "trace_id": "The trace",
        "agent_id": TOOL_CALL["agent_id"],
        "model": "The model that wrote the message",
        "input_tokens": "Input tokens",
        "output_tokens": "Output tokens",
        "cache_read_tokens": "Input tokens read from the prompt cache",
        "cache_creation_tokens": "Input tokens written to the prompt cache",
    }),
    "runs": Table("Training runs: what was trained on what, how it went, what it produced",
                  records.descriptions(records.Run)),
    "deployments": Table("Every deploy and rollback attempt in Ollama, failed ones included", {
        "id": "Row id",
        "action": "deploy or rollback",
        "model_version": "The registry's model version deployed",
        "tag": "The Ollama tag made (cc-capture:vN)",
        "alias": "The moving alias (cc-capture:latest)",
        "host": "The Ollama server",
        "digest": "The model's digest in Ollama",
        "quantization": "The GGUF file type shipped (f16, q8_0, q4_k_m)",
        "previous_version": "The version the alias pointed at before",
        "status": "succeeded or failed",
        "fault": "Why it failed: not_running, unreachable, too_old, out_of_disk, ...",
        "error": "The error message",
        "reason": "Why it was deployed or rolled back",
        "started_at": _TIMED["started_at"],
        "ended_at": _TIMED["ended_at"],
    }),
    "models": Table("The model registry: every candidate model, what it came from, its status", {
        "version": "The model's version number",
        "status": "candidate, champion, rejected or retired",
        "base_model": "The base model it was trained from",
        "runs": "The training runs it came from, in order (JSON; empty for the untuned base model)",
        "dataset_path": "The dataset it was trained on",
        "dataset_sha256": "That dataset's manifest hash",
        "path": "Where its weights are",
        "sha256": "A hash of its weights (evaluations are cached by it)",
        "artifacts": "Its files: merged weights, later GGUF, with sha256 (JSON)",
        "created_at": "When it was registered (Unix seconds)",
        "status_at": "When its status last changed (Unix seconds)",
    }),
    "model_events": Table("Every change of a model's status and every gate decision", {
        "id": "Row id",
        "version": "The model version",
        "at": "When (Unix seconds)",
        "status": "The status it got",
        "reasons": "Why (JSON list)",
        "figures": "The figures behind the decision: scores, difference, p-value (JSON)",
    }),
    "evaluations": Table("Scores of a model on an eval set, cached by the model's weights and the set", {
        "id": "Row id",
        "model_sha256": "The hash of what was scored: a model's weights (models.sha256), or one of its "
                        "exported GGUF files (its sha256, in models.artifacts)",
        "eval_set_hash": "A hash of the eval set's trace ids",
        "created_at": "When it was scored (Unix seconds)",
        "items": "Assistant steps scored",
        "traces": "Traces those steps came from",
        "metrics": "Each metric in [0, 1], behavioural_similarity included (JSON)",
        "counts": "The items behind each metric (JSON)",
        "intervals": "95% bootstrap intervals, resampled by trace (JSON)",
        "per_tool": "Items, tool accuracy and argument match per tool (JSON)",
        "item_scores": "Each item's scores (JSON)",
        "timings": "Seconds spent generating and scoring (JSON)",
    }),
    "pipelines": Table("Learning pipelines: dataset, training, evaluation and gate, step by step", {
        "pipeline_id": "The pipeline's id",
        "status": "Its state: running, finished, interrupted (Ctrl-C, `ccd pipeline stop`), died (its process "
                  "ended without recording its end); the last three are resumed by the next run",
        "outcome": "promoted, rejected, failed or skipped",
        "model_version": "The model it produced",
        "started_at": _TIMED["started_at"],
        "ended_at": _TIMED["ended_at"],
        "steps": "Each step's name, status, timings and detail (JSON)",
        "state": "What a resumed pipeline needs (JSON)",
        "error": "Why it failed (a process that died: why it is known, and its last log lines)",
        "pid": "The process running it (the last one, for a resumed pipeline)",
        "pid_start": "That process's start time (a reused pid is not taken for it)",
        "heartbeat_at": "Its last heartbeat (Unix seconds; written every 10 s while it runs)",
        "heartbeat_suspended_s": "How long the machine had been asleep since boot at that heartbeat (time asleep "
                                 "does not make a heartbeat stale)",
    }),
    "schedule_decisions": Table("Every check of the learning scheduler: run or wait, with its reasons", {
        "id": "Row id",
        "at": "When it checked (Unix seconds)",
        "action": "What it decided (run the pipeline, or wait)",
        "reasons": "Why (JSON list)",
        "next_check_at": "When it checks again (Unix seconds)",
        "pid": "The pipeline process it started",
        "pid_start": "That process's start time (a reused pid is not taken for it)",
        "log_path": "That process's log",
        "ended_at": "When that run ended (Unix seconds)",
        "exit_code": "How that run ended",
        "log_tail": "The end of its log",
    }),
    "events": Table("Every hook event as received (payload redacted)", {
        "id": "Row id",
        "journal_name": "The journal file it came from",
        "received_at": "When the hook wrote it (Unix seconds)",
        "ingested_at": "When the daemon stored it (Unix seconds)",
        "event": "The hook event name (PreToolUse, Stop, ...)",
        "session_id": TRACE["session_id"],
        "prompt_id": "Claude Code's prompt id",
        "trace_id": "The trace it was assembled into",
        "tool_use_id": TOOL_CALL["tool_use_id"],
        "agent_id": TOOL_CALL["agent_id"],
        "payload": "The event's JSON, redacted",
    } | _REDACTED),
    "quarantine": Table("Records that could not be ingested as they were, and why", {
        "id": "Row id",
        "journal_name": "The journal file",
        "reason": "Why it was quarantined",
        "size": "Its size in bytes",
        "received_at": "When it was written (Unix seconds)",
        "quarantined_at": "When it was quarantined (Unix seconds)",
        "sample": "The start of the record, redacted",
    } | _REDACTED),
    "prompt_routes": Table("Prompt ids that continue an earlier trace (a background agent's notification)", {
        "prompt_id": "The continuing prompt", "trace_id": "The trace it continues"}, hidden=True),
    "transcript_prompts": Table("Which trace a transcript prompt line became", {
        "uuid": "The transcript line", "trace_id": "The trace"}, hidden=True),
    "agent_links": Table("Agent to Agent/Task call links read from transcripts", {
        "agent_id": "The subagent", "tool_use_id": "The call that started it"}, hidden=True),
    "transcript_offsets": Table("How far each transcript file has been read", {
        "path": "The file", "session_id": TRACE["session_id"], "offset": "Bytes read",
        "pending_text": "Text waiting for its tool call", "state": "The reader's state (JSON)",
        "size": "The file's size when last read"}, hidden=True),
    "journal_done": Table("Journal records committed but maybe not yet deleted", {
        "name": "The journal file", "mtime_ns": "Its modification time", "size": "Its size"}, hidden=True),
    "dirty_traces": Table("Traces whose signals wait to be computed", {"trace_id": "The trace"}, hidden=True),
}
