"""The store: private files, WAL, versioned migrations, full-text search, exactly-once journal."""

import json
import os
import stat

import pytest

from cc_capture import journal, reads, store
from cc_capture.config import CaptureSettings
from cc_capture.ingest.ingester import Ingester
from conftest import emit, ingest_all


def test_private_files_and_wal(paths, db):
    assert stat.S_IMODE(os.stat(paths.db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths.home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(paths.journal).st_mode) == 0o700
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("CREATE TABLE t (x)")  # makes a -wal file appear
    for side in paths.home.glob("cc-capture.db-*"):
        assert stat.S_IMODE(os.stat(side).st_mode) == 0o600, side


def test_migrations_are_versioned_and_idempotent(paths, db):
    assert store.schema_version(db) == len(store.MIGRATIONS)
    store.apply_migrations(db)
    assert store.schema_version(db) == len(store.MIGRATIONS)
    assert {"events", "sessions", "traces", "tool_calls", "subagents", "quarantine", "traces_fts"} <= set(db.table_names())


def test_newer_schema_is_refused(paths, db):
    db.execute(f"PRAGMA user_version={len(store.MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this cc-capture"):
        store.connect(paths.db)


def test_full_text_search_over_prompts_and_answers(paths, db):
    for i, (prompt, answer) in enumerate([("Why does the parser crash?", "A null pointer in tokenize."),
                                          ("Rename the widget", "Renamed it everywhere.")]):
        base = {"session_id": "s", "prompt_id": f"p{i}"}
        emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt": prompt})
        emit(paths, {**base, "hook_event_name": "Stop", "last_assistant_message": answer})
    ingest_all(paths)
    assert [r.trace_id for r in reads.search(db, "parser")] == ["p0"]
    assert [r.trace_id for r in reads.search(db, "renamed")] == ["p1"]  # answer text, stemmed
    assert reads.search(db, 'quote"s and AND OR') == []  # query syntax can't break it
    # the index follows prompt and answer only; other updates leave it consistent with the table
    db.execute("UPDATE traces SET n_batches = n_batches + 1, status = 'completed'")
    db.execute("UPDATE traces SET final_response = 'Fixed the lexer.' WHERE trace_id = 'p0'")
    db.execute("INSERT INTO traces_fts (traces_fts) VALUES ('integrity-check')")  # raises if not
    assert [r.trace_id for r in reads.search(db, "lexer")] == ["p0"]
    assert reads.search(db, "tokenize") == []


def test_raw_payload_kept_beside_columns(paths, db):
    emit(paths, {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": "p", "prompt": "hi",
                 "extra_future_field": {"a": 1}})
    ingest_all(paths)
    (payload,) = db.execute("SELECT payload FROM events").fetchone()
    assert json.loads(payload)["extra_future_field"] == {"a": 1}


def test_committed_but_undeleted_record_is_not_ingested_twice(paths, db):
    """A crash between commit and unlink: the restart deletes the file instead of re-ingesting it."""
    emit(paths, {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": "p", "prompt": "once"})
    (f,) = journal.list_files(paths.journal)
    saved = (paths.journal / f.name).read_bytes()
    ingest_all(paths)
    # Recreate the state right after the commit: the file still there, its mark committed.
    (paths.journal / f.name).write_bytes(saved)
    os.utime(paths.journal / f.name, ns=(f.mtime_ns, f.mtime_ns))
    db.execute("INSERT INTO journal_done (name, mtime_ns, size) VALUES (?, ?, ?)", (f.name, f.mtime_ns, f.size))
    r = ingest_all(paths)
    assert r.ingested == 0
    assert db.execute("SELECT count(*) FROM events").fetchone() == (1,)
    assert not list(paths.journal.glob("*.ev")) and db.execute("SELECT count(*) FROM journal_done").fetchone() == (0,)


def test_a_new_record_reusing_a_done_name_is_still_ingested(paths, db):
    """pid reuse: a mark for the same name but another file (mtime/size) must not hide it."""
    emit(paths, {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": "p", "prompt": "new"})
    (f,) = journal.list_files(paths.journal)
    db.execute("INSERT INTO journal_done (name, mtime_ns, size) VALUES (?, ?, ?)", (f.name, f.mtime_ns - 10**9, 7))
    assert ingest_all(paths).ingested == 1


def test_batches_commit_separately(paths, db):
    """25 events with batch_events=10: three transactions of 10, 10 and 5 events, each committed."""
    for i in range(25):
        emit(paths, {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": f"p{i}", "prompt": "x"})
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    r = Ingester(paths, CaptureSettings(batch_events=10), db).run_pass()
    db.conn.set_trace_callback(None)
    batches, current = [], None
    for sql in statements:
        if sql.startswith("BEGIN"):
            current = 0
        elif sql.startswith("INSERT INTO events"):
            current += 1
        elif sql == "COMMIT" and current:
            batches.append(current)
            current = None
    assert batches == [10, 10, 5]
    assert r.ingested == 25 and db.execute("SELECT count(*) FROM traces").fetchone() == (25,)


def test_concurrent_first_connections_migrate_once(tmp_path):
    """The daemon and a `ccd` command opening a fresh database at once must not both migrate it."""
    import subprocess
    import sys

    target = tmp_path / "fresh.db"
    code = f"from cc_capture import store; from pathlib import Path; store.connect(Path({str(target)!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(8)]
    errors = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    db = store.connect(target)
    assert store.schema_version(db) == len(store.MIGRATIONS)


def test_json_or_text_decodes_as_json_does():
    """Stored JSON columns are decoded by msgspec where it can, by json where it refuses (NaN, a
    lone surrogate, a number out of range): the same values, types and key order as
    json.loads, and text that is no JSON stays text."""
    from cc_capture.store import json_or_text

    documents = ['{"b": 1, "a": [1.5, -0.0, 1e5, null, true, "x\\u00e9"], "c": {"d": 18446744073709551616}}',
                 "NaN", '{"x": Infinity}', '"\\ud800"', "1E400", "[" * 900 + "]" * 900, '{"a": 1, "a": 2}', "-0",
                 '"\ud800"']  # the last: an unescaped lone surrogate (msgspec cannot encode it to read it)
    for document in documents:
        assert repr(json_or_text(document)) == repr(json.loads(document)), document[:40]
    for text in ("plain text output", "", "{not json", "12 apples"):
        assert json_or_text(text) == text
    assert json_or_text(None) is None
