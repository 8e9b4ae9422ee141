"""`ccd` read commands: --json shapes (stable keys), tables, clear errors; nothing heavy imported."""

import json
import subprocess
import sys

import pytest

from conftest import ccd, emit, ingest_all

TRACE_KEYS = {"trace_id", "session_id", "prompt", "started_at", "ended_at", "status", "tool_sequence", "n_tool_calls",
              "final_response"}
CALL_KEYS = {"tool_use_id", "name", "input", "output", "is_error", "error", "reasoning", "agent_id",
             "parent_tool_use_id", "batch", "started_at", "duration_ms"}


@pytest.fixture
def captured(paths, shared):
    from conftest import SESSION_42067652, replay

    replay(paths, shared, SESSION_42067652)
    base = {"session_id": "s2", "cwd": "/w"}
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt_id": "later", "prompt": "Explain the flaky test"})
    emit(paths, {**base, "hook_event_name": "Stop", "prompt_id": "later", "last_assistant_message": "A race in setup."})
    ingest_all(paths)
    return paths


def test_traces_list_json(captured):
    rows = json.loads(ccd("traces", "list", "--json").stdout)
    assert [r["trace_id"] for r in rows] == ["later", "a5432553-5623-4791-bb0f-a31532771193"]  # newest first
    assert all(TRACE_KEYS <= set(r) for r in rows)
    assert rows[1]["tool_sequence"] == ["Bash", "Glob", "Grep", "Bash", "Read", "Write", "Agent"]
    assert json.loads(ccd("traces", "list", "--json", "--limit", "1").stdout)[0]["trace_id"] == "later"
    assert [r["trace_id"] for r in json.loads(ccd("traces", "list", "--json", "--session", "4206").stdout)] == [
        "a5432553-5623-4791-bb0f-a31532771193"]


def test_readme_documents_every_key_of_the_read_model():
    """Each record's `--json` form is its Struct's fields (cc_capture.records); README documents exactly those."""
    from cc_capture import records
    from support import readme

    def keys(record) -> set[str]:
        return set(records.keys(record))

    assert readme.keys("traces list") == keys(records.TraceSummary)
    assert readme.keys("search") == keys(records.SearchHit)
    assert readme.keys("traces show ID") == keys(records.Trace)
    for key, record in (("tool_calls", records.ToolCall), ("subagents", records.Subagent), ("usage", records.Usage),
                        ("feedback", records.Feedback)):
        assert readme.keys("traces show ID", key) == keys(record), key
    assert readme.keys("runs show ID") == keys(records.Run)
    assert readme.keys("runs show ID", "dataset_manifest") == readme.keys("dataset build", "manifest") == keys(
        records.DatasetManifest)
    assert readme.keys("runs show ID", "dataset_manifest", "tokens") == keys(records.TokenStats)
    assert readme.keys("runs show ID", "dataset_manifest", "inference") == keys(records.Inference)


def test_runs_json_keys_are_the_records(paths):
    from cc_capture import store
    from cc_capture.records import Run
    from cc_capture.train import runs
    from support import readme

    run_id = runs.create(store.connect(paths.db), "sft", {"base_model": "tiny"}, None, None)
    (listed,) = json.loads(ccd("runs", "list", "--json").stdout)
    shown = json.loads(ccd("runs", "show", run_id[:10], "--json").stdout)
    assert listed == shown and list(shown) == list(Run.__struct_fields__) and set(shown) == readme.keys("runs show ID")
    assert shown["status"] == "queued" and shown["phase"] == "sft" and shown["created_at"].endswith("Z")


def test_traces_show_json_by_prefix(captured):
    t = json.loads(ccd("traces", "show", "a5432553", "--json").stdout)
    assert TRACE_KEYS <= set(t) and len(t["tool_calls"]) == 8
    assert all(CALL_KEYS <= set(c) for c in t["tool_calls"])


def test_human_output(captured):
    out = ccd("traces", "list").stdout
    assert "a5432553" in out and "Run the scripted steps." in out
    shown = ccd("traces", "show", "a5432553").stdout
    assert "echo hello" in shown and "All scenario steps complete." in shown
    status = ccd("status").stdout
    assert "daemon not running" in status and "traces" in status


def test_search(captured):
    rows = json.loads(ccd("search", "flaky", "--json").stdout)
    assert [r["trace_id"] for r in rows] == ["later"] and "[flaky]" in rows[0]["snippet"]
    assert json.loads(ccd("search", "nothing-matches-this", "--json").stdout) == []


def test_status_json(captured):
    s = json.loads(ccd("status", "--json").stdout)
    assert s["daemon"] == {"running": False, "pid": None, "uptime_s": None, "ready": False, "warnings": [],
                           "error": None}
    assert s["journal_incomplete"] == 0 and s["disk"]["free_bytes"] > 0 and s["disk"]["full"] is False
    assert s["counts"] == {"events": 32, "sessions": 2, "traces": 2, "tool_calls": 8, "quarantined": 0}
    assert s["journal_backlog_bytes"] == 0 and s["db_bytes"] > 0 and s["last_event_at"].endswith("Z")
    assert s["hook_errors"]["count"] == 0


def test_status_shows_hook_errors_and_backlog(paths):
    (paths.home / "hook-errors.log").write_text("123\tcannot create a journal record in /x\n")
    emit(paths, {"hook_event_name": "Stop"})
    s = json.loads(ccd("status", "--json").stdout)
    assert s["hook_errors"]["count"] == 1 and s["hook_errors"]["recent"] == ["cannot create a journal record in /x"]
    assert s["journal_backlog_bytes"] > 0
    assert "cannot create a journal record" in ccd("status").stdout


def test_unknown_trace_is_a_clear_error(paths):
    p = ccd("traces", "show", "nope", check=False)
    assert p.returncode == 1 and "no trace matches 'nope'" in p.stderr


def test_invalid_settings_file_is_a_clear_error(paths):
    (paths.home / "config.toml").write_text("[capture]\nbatch_events = -3\n")
    p = ccd("ingest", check=False)
    assert p.returncode == 1 and "batch_events" in p.stderr and "config.toml" in p.stderr


@pytest.mark.parametrize("command", [("traces", "list"), ("schedule",), ("pipeline", "log"), ("dataset", "build")],
                         ids=" ".join)
def test_a_newer_database_is_a_clear_error_for_every_command(paths, db, command):
    """Each command opens the database one way (cli.output.open_db); `pipeline log` once showed a traceback."""
    from cc_capture import store

    db.execute(f"PRAGMA user_version={len(store.MIGRATIONS) + 1}")
    p = ccd(*command, check=False)
    assert p.returncode == 1 and "newer than this cc-capture" in p.stderr and "upgrade cc-capture" in p.stderr
    assert "Traceback" not in p.stderr + p.stdout


HEAVY = ("torch", "transformers", "trl", "unsloth", "peft", "datasets", "accelerate", "bitsandbytes", "datasette")


def test_status_and_capture_never_try_to_import_heavy_libraries(paths):
    """An import hook records every attempt, so this holds whether or not torch is installed."""
    code = f"""
import sys
attempts = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {HEAVY!r}:
            attempts.append(name)
        return None
sys.meta_path.insert(0, Spy())
from typer.testing import CliRunner
from cc_capture.cli.main import app
for args in (['status', '--json'], ['traces', 'list', '--json'], ['ingest'], ['hooks', 'status']):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, (args, r.output)
import cc_capture.daemon, cc_capture.ingest.ingester
print(attempts)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_quarantine_listing_says_why(paths):
    emit(paths, b'{"hook_event_name": "Stop", "password=hunter2-secret"')
    ingest_all(paths)
    (row,) = json.loads(ccd("quarantine", "--json").stdout)
    assert row["reason"].startswith("malformed JSON") and row["size"] > 0 and row["received_at"].endswith("Z")
    assert "hunter2-secret" not in row["sample"] and "[REDACTED:secret]" in row["sample"]
    assert "malformed JSON" in ccd("quarantine").stdout


def test_status_reports_the_last_training_run(paths):
    from cc_capture import store
    from cc_capture.train import runs

    assert json.loads(ccd("status", "--json").stdout)["last_run"] is None
    db = store.connect(paths.db)
    run_id = runs.create(db, "sft", {"base_model": "tiny"}, None, None)
    runs.update(db, run_id, status="failed", error="RuntimeError: out of memory")
    last = json.loads(ccd("status", "--json").stdout)["last_run"]
    assert last["run_id"] == run_id and last["status"] == "failed" and "out of memory" in last["error"]
    assert "out of memory" in ccd("status").stdout
