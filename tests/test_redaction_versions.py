"""Every stored row records the redaction rules that wrote it; `ccd import --rescan` repairs what
older rules damaged where the transcript survives; the dataset's second pass adds nothing."""

import json
import subprocess
import sys

import pytest

from cc_capture import redact, store
from cc_capture.transcripts.bulk import import_paths
from conftest import ingest_all, trace_json
from conftest import SESSION_42067652, TRACE, replay

CODE = 'thread_key = block["tool_use_id"] || "unmatched"'
# What the first rules (version 1) stored for CODE: a variable's name taken for a secret.
DAMAGED = 'thread_key = [REDACTED:secret] || "unmatched"'


def _session_with_code(folder):
    rows = [
        {"type": "user", "sessionId": "s-code", "uuid": "u1", "message": {"role": "user", "content": "fix the keys"}},
        {"type": "assistant", "sessionId": "s-code", "uuid": "a1", "message": {"id": "m1", "model": "m", "content": [
            {"type": "text", "text": "Editing the grouping."},
            {"type": "tool_use", "id": "toolu_code1", "name": "Edit",
             "input": {"file_path": "/w/a.js", "old_string": CODE, "new_string": CODE + ";"}}]}},
        {"type": "user", "sessionId": "s-code", "uuid": "u2", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_code1", "content": f"1\t{CODE};"}]}},
        {"type": "assistant", "sessionId": "s-code", "uuid": "a2", "message": {"id": "m2", "model": "m", "content": [
            {"type": "text", "text": "Done: the grouping key is read from the block."}]}},
    ]
    f = folder / "s-code.jsonl"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def _versions(db, table):
    return {v for (v,) in db.execute(f"SELECT DISTINCT redactor_version FROM {table}")}


def test_rows_before_versioning_are_version_1_and_new_rows_the_current_version(paths):
    db = store.connect(paths.db, migrate=False)
    for version in range(1, 6):  # the schema as it was before redactor versions
        store.MIGRATIONS[version - 1](db)
        db.execute(f"PRAGMA user_version={version}")
    db.execute("INSERT INTO traces (trace_id, session_id, seq, prompt) VALUES ('old', 's', 1, 'hi')")
    store.apply_migrations(db)
    db.execute("INSERT INTO traces (trace_id, session_id, seq, prompt) VALUES ('new', 's', 2, 'hi')")
    assert dict(db.execute("SELECT trace_id, redactor_version FROM traces").fetchall()) == {"old": 1,
                                                                                          "new": redact.VERSION}
    for table in store.REDACTED_TABLES:  # a new redact.VERSION needs a migration that moves the default
        default = next(r[4] for r in db.execute(f"PRAGMA table_info({table})") if r[1] == "redactor_version")
        assert int(default) == redact.VERSION, table


def test_rescan_replaces_what_older_rules_stored_and_keeps_hook_data(paths, shared, db, tmp_path):
    replay(paths, shared, SESSION_42067652)
    ingest_all(paths)
    folder = tmp_path / "projects" / "-w"
    _session_with_code(folder)
    import_paths(db, [folder, shared / "transcripts" / "cc-2.1.328"])
    hooked = trace_json(db, TRACE)
    events = db.execute("SELECT count(*) FROM events").fetchone()
    # what the first rules left behind: the import's rows, damaged, and every row at version 1
    for table in store.REDACTED_TABLES:
        db.execute(f"UPDATE {table} SET redactor_version = 1")
    db.execute("UPDATE tool_calls SET input = replace(input, ?, ?) WHERE session_id = 's-code'",
               (json.dumps(CODE)[1:-1], json.dumps(DAMAGED)[1:-1]))
    (damaged,) = db.execute("SELECT input FROM tool_calls WHERE tool_use_id = 'toolu_code1'").fetchone()
    assert "[REDACTED:secret]" in damaged
    db.execute("INSERT INTO feedback (trace_id, rating, rated_at) SELECT trace_id, 'up', 0 FROM traces "
               "WHERE session_id = 's-code'")

    run = subprocess.run([sys.executable, "-m", "cc_capture", "import", str(folder),
                          str(shared / "transcripts" / "cc-2.1.328"), "--rescan", "--json", "--workers", "0"],
                         capture_output=True, text=True, check=True)
    data = json.loads(run.stdout)
    assert data["rescanned"] == 3  # s-code, and both sessions of cc-2.1.328 (one merged with hooks)
    (fixed, version) = db.execute("SELECT input, redactor_version FROM tool_calls "
                                  "WHERE tool_use_id = 'toolu_code1'").fetchone()
    assert json.loads(fixed)["old_string"] == CODE and version == redact.VERSION
    assert db.execute("SELECT count(*) FROM tool_calls WHERE session_id = 's-code'").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM traces WHERE session_id = 's-code'").fetchone() == (1,)
    assert db.execute("SELECT rating FROM feedback f JOIN traces t USING (trace_id) "
                      "WHERE t.session_id = 's-code'").fetchall() == [("up",)]
    # hook-captured data is kept as captured, merged with the transcript again
    assert db.execute("SELECT count(*) FROM events").fetchone() == events
    again = trace_json(db, TRACE)
    assert again["source"] == "both" and {c["source"] for c in again["tool_calls"]} == {"both"}
    for key in ("prompt", "final_response", "status", "started_at", "model"):
        assert again[key] == hooked[key], key
    assert [(c["tool_use_id"], c["started_at"], c["input"]) for c in again["tool_calls"]] == \
        [(c["tool_use_id"], c["started_at"], c["input"]) for c in hooked["tool_calls"]]
    assert again["usage"] == hooked["usage"]
    assert _versions(db, "reasoning") == {redact.VERSION}
    # nothing older is left of what the import wrote: a second rescan has nothing to do
    again = json.loads(subprocess.run([sys.executable, "-m", "cc_capture", "import", str(folder), "--rescan", "--json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert again["rescanned"] == 0 and again["traces"] == 0


def test_dataset_second_pass_redacts_nothing_the_first_did_not(db, shared, tmp_path):
    """The builder redacts the stored values again with the same function: on what these rules
    stored it changes nothing (it used to redact the JSON-string form of tool arguments)."""
    pytest.importorskip("datasets", reason="the training extra is not installed (pip install -e '.[train]')")
    from cc_capture.config import DatasetSettings, GateSettings, SystemPromptChoice
    from cc_capture.datasets.build import build
    from cc_capture.signals.runner import compute_pending

    import_paths(db, [shared / "transcripts", shared / "transcripts-more"])
    compute_pending(db, GateSettings(min_answer_words=0, exclude_statuses=[], require_final_answer=False,
                                     min_prompt_chars=0, ambiguous_prompts=[]))
    result = build(db, tmp_path / "datasets", DatasetSettings(), SystemPromptChoice.COMPACT)
    assert sum(result.counts.values()) >= 20
    assert result.manifest.redacted_again == 0
