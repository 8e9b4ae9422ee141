"""Assembly of real Claude Code 2.1.328 hook payloads (../shared/payloads) into traces."""

import json
import os

import pytest

from conftest import SESSION, SESSION_42067652, TRACE, emit, ingest_all, replay, trace_json, traces_json

@pytest.fixture
def background_session(paths, shared, db):
    replay(paths, shared, SESSION_42067652)
    result = ingest_all(paths)
    assert (result.ingested, result.quarantined) == (len(SESSION_42067652), 0)
    return trace_json(db, TRACE)


def test_one_trace_per_real_prompt(background_session, db):
    rows = traces_json(db)
    assert [r["trace_id"] for r in rows] == [TRACE]  # the task-notification started no trace
    t = background_session
    assert t["session_id"] == SESSION
    assert t["prompt"] == "Run the scripted steps."
    assert t["status"] == "completed"
    assert t["final_response"] == "All scenario steps complete."
    assert t["tool_sequence"] == ["Bash", "Glob", "Grep", "Bash", "Read", "Write", "Agent"]
    assert t["n_tool_calls"] == 8


def test_tool_calls_joined_field_by_field(background_session):
    calls = {c["tool_use_id"]: c for c in background_session["tool_calls"]}
    bash = calls["toolu_5873fd9528a84bc19340"]
    assert bash["name"] == "Bash" and bash["input"] == {"command": "echo hello", "description": "echo hello"}
    assert bash["output"]["stdout"] == "hello" and bash["status"] == "ok" and not bash["is_error"]
    assert bash["duration_ms"] == 19 and bash["batch"] == 1 and bash["agent_id"] is None

    glob, grep = calls["toolu_145494ae1fb742c4a05d"], calls["toolu_0d1072c126a3443b9cfe"]
    assert glob["batch"] == grep["batch"] == 2  # one assistant message, one batch

    failed = calls["toolu_0c264a30564f4224bd54"]
    assert failed["is_error"] and failed["status"] == "error" and failed["error"] == "Exit code 1\nfailing"
    assert failed["duration_ms"] == 7 and failed["output"] is None
    missing = calls["toolu_8837fbe82a0349efab42"]
    assert missing["is_error"] and missing["error"].startswith("File does not exist")

    denied = calls["toolu_60133dc2291846c09bbf"]
    assert denied["status"] == "not_run" and denied["is_error"]
    assert "haven't granted it yet" in denied["error"] and denied["output"] is None


def test_background_subagent_nested_under_its_agent_call(background_session):
    calls = {c["tool_use_id"]: c for c in background_session["tool_calls"]}
    agent = calls["toolu_5a44b67579e445978d9d"]
    assert agent["name"] == "Agent" and agent["status"] == "async_launched"
    inner = calls["toolu_d00df597ce3d429790b0"]
    assert inner["agent_id"] == "af633d67755f43666"
    assert inner["parent_tool_use_id"] == "toolu_5a44b67579e445978d9d"
    assert inner["output"]["stdout"] == "from-subagent"
    (sub,) = background_session["subagents"]
    assert sub["agent_id"] == "af633d67755f43666" and sub["background"] is True
    assert sub["agent_type"] == "general-purpose"
    assert sub["final_response"] == "Subagent done: from-subagent" and sub["ended_at"]


def test_session_row(background_session, db):
    row = db.execute("SELECT cwd, source, ended_at IS NOT NULL, end_reason FROM sessions").fetchone()
    assert row == ("/home/user/project", "startup", 1, "other")


def test_foreground_subagent_linked_before_its_call_returns(paths, shared, db):
    names = ["PreToolUse_Agent_foreground", "SubagentStart_foreground"]
    replay(paths, shared, names)
    ingest_all(paths)
    (sub,) = db.execute("SELECT agent_id, parent_tool_use_id FROM subagents").fetchall()
    assert sub == ("ae8a438f15a09b316", "toolu_436adeec8e5e48a9bd17")  # paired while still running
    replay(paths, shared, ["PostToolUse_Agent_foreground", "SubagentStop_foreground"])
    ingest_all(paths)
    t = trace_json(db, "85542adc-af1a-4c27-a6de-eb08f772978f")
    (call,) = t["tool_calls"]
    assert call["status"] == "ok" and call["output"]["agentId"] == "ae8a438f15a09b316"
    assert t["subagents"][0]["background"] is False


def test_compaction_agent_is_not_paired_with_an_agent_call(paths, shared, db):
    replay(paths, shared, ["PreCompact_manual", "SubagentStop_compaction_internal", "PostCompact_manual",
                           "SessionStart_compact"])
    ingest_all(paths)
    assert db.execute("SELECT n_compactions FROM sessions").fetchone() == (1,)
    assert db.execute("SELECT parent_tool_use_id FROM subagents").fetchall() == [(None,)]


def test_unanswered_prompt_is_interrupted_by_the_next(paths, db):
    base = {"session_id": "s", "transcript_path": "/nonexistent.jsonl", "cwd": "/w"}
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt_id": "p1", "prompt": "first"})
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt_id": "p2", "prompt": "second"})
    emit(paths, {**base, "hook_event_name": "StopFailure", "prompt_id": "p2", "error": "rate_limit",
                 "error_details": "429 Too Many Requests"})
    ingest_all(paths)
    by_id = {t["trace_id"]: t for t in traces_json(db)}
    assert by_id["p1"]["status"] == "interrupted" and by_id["p1"]["ended_at"]
    assert by_id["p2"]["status"] == "failed" and by_id["p2"]["error"] == "rate_limit: 429 Too Many Requests"


def test_events_stamped_in_one_clock_tick_keep_their_order(paths, db):
    """Two hooks of one session that finish within the kernel's timestamp tick: the later process
    (the higher pid, compared as a number) comes second, whatever the names' text order."""
    base = {"session_id": "s", "transcript_path": "/nonexistent.jsonl", "cwd": "/w", "hook_event_name": "UserPromptSubmit"}
    for name, prompt_id in (("9999-0.ev", "p1"), ("10000-0.ev", "p2")):
        f = paths.journal / name
        f.write_bytes(json.dumps({**base, "prompt_id": prompt_id, "prompt": prompt_id}).encode() + b"\n\x1e\n")
        os.utime(f, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    ingest_all(paths)
    by_id = {t["trace_id"]: t for t in traces_json(db)}
    assert by_id["p1"]["status"] == "interrupted" and by_id["p2"]["status"] == "open"


def test_session_end_interrupts_open_trace(paths, db):
    base = {"session_id": "s", "cwd": "/w"}
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt_id": "p1", "prompt": "hi"})
    emit(paths, {**base, "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"})
    ingest_all(paths)
    assert traces_json(db)[0]["status"] == "interrupted"


def test_events_out_of_order_assemble_the_same(paths, shared, db):
    """Post before Pre, batch before Post: assembly is keyed, not sequential."""
    order = ["UserPromptSubmit", "PostToolBatch_single_Bash", "PostToolUse_Bash", "PreToolUse_Bash", "Stop"]
    replay(paths, shared, order)
    ingest_all(paths)
    t = trace_json(db, TRACE)
    (call,) = t["tool_calls"]
    assert call["status"] == "ok" and not call["is_error"] and call["error"] is None
    assert call["input"]["command"] == "echo hello" and call["batch"] == 1


def test_reingesting_raw_events_is_idempotent(background_session, db, paths, shared):
    """Replaying the same payloads again (a second journal copy) changes no trace content."""
    before = trace_json(db, TRACE)
    replay(paths, shared, SESSION_42067652)
    ingest_all(paths)
    after = trace_json(db, TRACE)
    strip = lambda t: json.dumps({k: v for k, v in t.items() if k not in ("ended_at", "started_at", "vector")} | {
        "tool_calls": [{k: v for k, v in c.items() if k not in ("started_at", "batch")} for c in t["tool_calls"]],
        "subagents": [{k: v for k, v in s.items() if not k.endswith("_at")} for s in t["subagents"]]}, sort_keys=True)
    assert strip(before) == strip(after)


def test_parallel_calls_follow_the_models_order_not_the_hooks(paths, shared, db):
    replay(paths, shared, ["UserPromptSubmit", "PreToolUse_parallel_Grep", "PreToolUse_parallel_Glob",
                           "PostToolUse_parallel_Grep", "PostToolUse_parallel_Glob", "PostToolBatch_parallel_Glob_Grep"])
    ingest_all(paths)
    assert trace_json(db, TRACE)["tool_sequence"] == ["Glob", "Grep"]
