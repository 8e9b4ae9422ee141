"""Bad records are quarantined with a reason, never crash ingest, never hold up later events."""

import os
import time

from cc_capture.config import CaptureSettings
from conftest import emit, ingest_all, trace_json, traces_json

GOOD = {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": "p", "prompt": "after the bad one"}


def reasons(db):
    return [r[0] for r in db.execute("SELECT reason FROM quarantine ORDER BY id")]


def test_malformed_json(paths, db):
    emit(paths, b'{"hook_event_name": "Stop", ')
    emit(paths, GOOD)
    r = ingest_all(paths)
    assert (r.ingested, r.quarantined) == (1, 1)
    assert reasons(db)[0].startswith("malformed JSON")
    assert traces_json(db)[0]["prompt"] == "after the bad one"


def test_not_a_hook_payload(paths, db):
    emit(paths, b'[1, 2, 3]')
    emit(paths, b'{"no_event_name": true}')
    emit(paths, b'{"hook_event_name": "PreToolUse", "session_id": 42}')
    r = ingest_all(paths)
    assert r.quarantined == 3
    assert reasons(db)[:2] == ["not a hook payload: no hook_event_name"] * 2
    assert reasons(db)[2].startswith("unexpected field type")


def test_non_utf8(paths, db):
    emit(paths, b'{"hook_event_name": "Stop", "last_assistant_message": "\xff\xfe bad"}')
    emit(paths, GOOD)
    r = ingest_all(paths)
    assert (r.ingested, r.quarantined) == (1, 1)
    payload = b'{"hook_event_name": "Stop", "last_assistant_message": "'
    assert reasons(db) == [f"not UTF-8: invalid byte at offset {len(payload)}"]


def test_truncated_record_waits_then_is_quarantined(paths, db):
    (paths.journal / "999999-0.ev").write_bytes(b'{"hook_event_name": "Stop", "session_id": "s"')
    emit(paths, GOOD)
    r = ingest_all(paths)
    assert (r.ingested, r.quarantined, r.waiting) == (1, 0, 1)  # maybe still being written
    old = time.time() - 3600
    os.utime(paths.journal / "999999-0.ev", (old, old))
    r = ingest_all(paths)
    assert (r.quarantined, r.waiting) == (1, 0)
    assert reasons(db)[0].startswith("truncated: no end marker")
    assert not list(paths.journal.glob("*.ev"))


def test_huge_tool_output_is_cut_and_reported(paths, db):
    big = "0123456789abcdef" * (50 * 1024 * 1024 // 16)  # 50 MB of tool output
    base = {"session_id": "s", "prompt_id": "p", "tool_name": "Bash", "tool_use_id": "toolu_big",
            "tool_input": {"command": "cat big.log"}}
    emit(paths, GOOD)
    emit(paths, {**base, "hook_event_name": "PreToolUse"})
    emit(paths, {**base, "hook_event_name": "PostToolUse", "tool_response": {"stdout": big, "stderr": ""}})
    emit(paths, {"hook_event_name": "Stop", "session_id": "s", "prompt_id": "p", "last_assistant_message": "done"})
    r = ingest_all(paths)
    assert (r.ingested, r.quarantined) == (4, 1)
    (reason,) = reasons(db)
    assert reason.startswith("oversized: ") and "stored with long strings cut" in reason
    t = trace_json(db, "p")
    assert t["status"] == "completed" and t["final_response"] == "done"
    (call,) = t["tool_calls"]
    out = call["output"]["stdout"]
    assert out.startswith("0123456789abcdef") and "truncated" in out
    assert len(out) < CaptureSettings().max_output_chars + 200
    assert os.path.getsize(paths.db) < 5 * 1024 * 1024


def test_record_over_read_limit_is_not_read(paths, db):
    emit(paths, {"hook_event_name": "Stop", "x": "y" * 5000})
    emit(paths, GOOD)
    r = ingest_all(paths, CaptureSettings(max_read_bytes=1000))
    assert (r.ingested, r.quarantined) == (1, 1)
    assert "over max_read_bytes" in reasons(db)[0]


def test_quarantine_counted_in_status(paths):
    from cc_capture import status

    emit(paths, b"not json")
    ingest_all(paths)
    assert status.collect(paths)["counts"]["quarantined"] == 1
