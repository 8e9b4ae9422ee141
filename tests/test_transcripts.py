"""Transcripts of every version → traces, as live capture makes them; incremental; merged with hooks."""

import json
import shutil
import sqlite3
import threading

import pytest

from cc_capture import store
from cc_capture.transcripts.bulk import import_paths
from cc_capture.transcripts.discovery import discover
from cc_capture.transcripts.parser import parse_line
from conftest import ingest_all, trace_json, traces_json
from conftest import SESSION_42067652, TRACE, replay


@pytest.fixture
def transcripts(shared):
    return shared / "transcripts"


def test_every_fixture_line_parses(transcripts):
    for f in transcripts.rglob("*.jsonl"):
        kinds = [parse_line(raw.rstrip(b"\n")).kind for raw in f.open("rb")]
        assert "bad" not in kinds, f
        assert "assistant" in kinds, f


def test_discover_groups_session_files(transcripts):
    sessions = discover([transcripts])
    s = sessions["ae4a77f8-aedd-4bc1-888f-c94edc91af04"]
    assert s.main.name == "ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl"
    assert sorted(a.name for a in s.agents) == ["agent-aac57f5.jsonl", "agent-acompact-946d2b.jsonl"]
    assert len(sessions["42067652-f236-40d4-9ddc-e0f17f556545"].agents) == 1


def test_current_layout_background_agent_and_notification(db, transcripts):
    import_paths(db, [transcripts / "cc-2.1.328"])
    t = trace_json(db, TRACE)
    assert t["prompt"] == "Run the scripted steps." and t["status"] == "completed"
    assert t["final_response"] == "All scenario steps complete." and t["source"] == "transcript"
    assert t["tool_sequence"] == ["Bash", "Bash", "Read", "Glob", "Grep", "Write", "Agent"]
    calls = {c["tool_use_id"]: c for c in t["tool_calls"]}
    assert calls["toolu_5873fd9528a84bc19340"]["reasoning"] == "Run a command."
    assert calls["toolu_5873fd9528a84bc19340"]["output"]["stdout"] == "hello"
    assert calls["toolu_0c264a30564f4224bd54"]["is_error"] and "Exit code 1" in calls["toolu_0c264a30564f4224bd54"]["error"]
    assert calls["toolu_145494ae1fb742c4a05d"]["batch"] == calls["toolu_0d1072c126a3443b9cfe"]["batch"]
    assert calls["toolu_60133dc2291846c09bbf"]["status"] == "not_run"  # permission not granted
    inner = calls["toolu_d00df597ce3d429790b0"]  # the background subagent's call, linked by .meta.json
    assert inner["agent_id"] == "af633d67755f43666" and inner["parent_tool_use_id"] == "toolu_5a44b67579e445978d9d"
    assert t["model"] == "claude-opus-5-5" and t["usage"]["output_tokens"] > 0
    # the task-notification continued this trace: no trace of its own
    assert [r["trace_id"] for r in traces_json(db) if r["session_id"].startswith("4206")] == [TRACE]


def test_2_1_39_progress_links_compaction_and_streamed_messages(db, transcripts):
    stats = import_paths(db, [transcripts / "spotter-2.1.39"])
    assert stats.skipped["compaction agent"] == 2 and stats.skipped["compact summary"] == 1
    (sub,) = db.execute("SELECT agent_id, parent_tool_use_id FROM subagents").fetchall()
    assert sub[0] == "aac57f5" and sub[1]  # linked through an agent_progress line
    parent = db.execute("SELECT name FROM tool_calls WHERE tool_use_id = ?", (sub[1],)).fetchone()
    assert parent == ("Task",)
    # a message streamed one block per line is counted once (compaction agents are not imported)
    ids = {json.loads(l)["message"].get("id") for f in (transcripts / "spotter-2.1.39").rglob("*.jsonl")
           if "acompact" not in f.name for l in f.open() if json.loads(l).get("type") == "assistant"}
    assert db.execute("SELECT count(*) FROM message_usage").fetchone()[0] == len(ids - {None}) == 237
    # thinking text comes before the visible text, in order
    short = next(r for r in traces_json(db, limit=50) if (r["prompt"] or "").startswith("mix phx.server"))
    first = trace_json(db, short["trace_id"])["tool_calls"][0]
    assert first["reasoning"].startswith("The user is having trouble starting their Phoenix server.")
    assert first["reasoning"].endswith("Let me check the project structure and try running the server to see the error.")
    assert short["status"] == "interrupted"


def test_1_0_x_inline_sidechains_nest_under_their_task(db, transcripts):
    import_paths(db, [transcripts / "ccviewer-1.0.x"])
    subs = db.execute("SELECT s.agent_id, c.name, c.trace_id FROM subagents s "
                      "JOIN tool_calls c ON c.tool_use_id = s.parent_tool_use_id").fetchall()
    assert len(subs) == 2 and {s[1] for s in subs} == {"Task"}
    inner = db.execute("SELECT count(*) FROM tool_calls WHERE agent_id LIKE 'sidechain-%'").fetchone()[0]
    assert inner == 8  # the sidechains' own calls (8 tool_use blocks), under the parent's trace
    assert len({s[2] for s in subs}) == 1
    t = trace_json(db, subs[0][2])
    assert t["prompt"].startswith("/orchestrator") and t["status"] == "completed"


def test_import_is_idempotent_and_incremental(db, transcripts, tmp_path):
    src = transcripts / "spotter-2.1.39" / "subagent.jsonl"
    lines = src.read_bytes().splitlines(keepends=True)
    target = tmp_path / "proj" / "subagent.jsonl"
    target.parent.mkdir()
    half = len(lines) // 2
    target.write_bytes(b"".join(lines[:half]) + lines[half][: len(lines[half]) // 2])  # a line half written
    first = import_paths(db, [target.parent])
    with target.open("r+b") as fh:
        fh.seek(0)
        fh.write(b"".join(lines))
    second = import_paths(db, [target.parent])
    assert first.lines + second.lines == len(lines)  # nothing read twice, the half line waited
    incremental = [(r["prompt"], r["status"], r["n_tool_calls"], r["final_response"]) for r in traces_json(db)]
    assert import_paths(db, [target.parent]).lines == 0  # nothing new
    fresh = store.connect(tmp_path / "fresh.db")
    import_paths(fresh, [target.parent])
    assert incremental == [(r["prompt"], r["status"], r["n_tool_calls"], r["final_response"])
                           for r in traces_json(fresh)]


def test_unknown_and_broken_lines_are_counted_not_fatal(db, tmp_path):
    f = tmp_path / "p" / "s1.jsonl"
    f.parent.mkdir()
    rows = [
        {"type": "user", "sessionId": "s1", "uuid": "u1", "message": {"role": "user", "content": "hello there"}},
        {"type": "brand-new-kind", "sessionId": "s1"},
        {"type": "assistant", "sessionId": "s1", "message": {"id": "m0", "model": "m", "content": [
            {"type": "thinking", "thinking": "", "signature": "x"},
            {"type": "tool_use", "id": "toolu_a", "name": "Bash", "input": {"command": "ls"}}]}},
        {"type": "assistant", "sessionId": "s1", "message": {"id": "m1", "model": "m", "content": [
            {"type": "hologram"}, {"type": "text", "text": "Hi! How can I help today with your project?"}]}},
    ]
    f.write_text(json.dumps(rows[0]) + "\n{not json\n" + "".join(json.dumps(r) + "\n" for r in rows[1:]))
    stats = import_paths(db, [f])
    assert stats.skipped == {"unreadable line": 1, "unknown type 'brand-new-kind'": 1}
    (t,) = traces_json(db)
    assert t["final_response"] == "Hi! How can I help today with your project?" and t["status"] == "completed"
    (call,) = trace_json(db, t["trace_id"])["tool_calls"]
    assert call["reasoning"] == ""  # an empty (redacted) thinking block: nothing invented


def test_a_bad_byte_in_a_tool_result_costs_that_byte_not_the_session(db, tmp_path):
    """A tool result whose text holds a byte that is not UTF-8 is stored with it replaced (U+FFFD),
    whether the text is what is stored (plain or failed results) or a structured result is."""
    f = tmp_path / "p" / "s1.jsonl"
    f.parent.mkdir()
    prompt = {"type": "user", "sessionId": "s1", "uuid": "u1", "message": {"role": "user", "content": "list it"}}
    calls = {"type": "assistant", "sessionId": "s1", "message": {"id": "m0", "model": "m", "content": [
        {"type": "tool_use", "id": f"toolu_{k}", "name": "Bash", "input": {"command": "ls"}} for k in "abc"]}}
    results = [("a", b""), ("b", b',"is_error":true'), ("c", b"")]
    lines = [json.dumps(prompt).encode(), json.dumps(calls).encode()]
    for k, extra in results:
        lines.append(b'{"type":"user","sessionId":"s1","message":{"role":"user","content":[{"type":"tool_result",'
                     b'"tool_use_id":"toolu_' + k.encode() + b'","content":"bad \xff byte"' + extra + b"}]}"
                     + (b',"toolUseResult":{"stdout":"ok"}' if k == "c" else b"") + b"}")
    f.write_bytes(b"\n".join(lines) + b"\n")
    stats = import_paths(db, [f])
    assert stats.failed == {} and stats.tool_calls == 3
    (t,) = traces_json(db)
    outputs = {c["tool_use_id"]: (c["status"], c["output"], c["error"]) for c in trace_json(db, t["trace_id"])["tool_calls"]}
    assert outputs == {"toolu_a": ("ok", "bad \ufffd byte", None), "toolu_b": ("error", None, "bad \ufffd byte"),
                       "toolu_c": ("ok", {"stdout": "ok"}, None)}


def test_spilled_tool_result_is_read_from_tool_results(db, tmp_path):
    session = tmp_path / "proj" / "s2.jsonl"
    spill = session.with_suffix("") / "tool-results" / "toolu_big.txt"
    spill.parent.mkdir(parents=True)
    spill.write_text("line\n" * 1000)
    rows = [
        {"type": "user", "sessionId": "s2", "uuid": "u1", "message": {"role": "user", "content": "show the log"}},
        {"type": "assistant", "sessionId": "s2", "message": {"id": "m1", "content": [
            {"type": "tool_use", "id": "toolu_big", "name": "Bash", "input": {"command": "cat big.log"}}]}},
        {"type": "user", "sessionId": "s2", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_big",
             "content": f"<persisted-output>Output too large. Full output saved to: {spill}\nPreview: line</persisted-output>"}]}},
        {"type": "assistant", "sessionId": "s2", "message": {"id": "m2", "content": [{"type": "text", "text": "1000 lines."}]}},
    ]
    session.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_paths(db, [session])
    (call,) = trace_json(db, "u1")["tool_calls"]
    assert call["output"] == "line\n" * 1000


def test_long_outputs_are_cut_as_live_capture_cuts_them(db, tmp_path):
    from cc_capture.claude_format import cap_output

    session = tmp_path / "proj" / "s3.jsonl"
    session.parent.mkdir()
    structured = {"stdout": "x" * 5000, "stderr": "", "interrupted": False}
    rows = [
        {"type": "user", "sessionId": "s3", "uuid": "u1", "message": {"role": "user", "content": "run it"}},
        {"type": "assistant", "sessionId": "s3", "message": {"id": "m1", "content": [
            {"type": "tool_use", "id": "toolu_long", "name": "Bash", "input": {"command": "yes x"}},
            {"type": "tool_use", "id": "toolu_fail", "name": "Bash", "input": {"command": "false"}}]}},
        {"type": "user", "sessionId": "s3", "toolUseResult": structured, "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_long", "content": "x" * 5000}]}},
        {"type": "user", "sessionId": "s3", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_fail", "content": "E" * 5000, "is_error": True}]}},
    ]
    session.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_paths(db, [session], max_output_chars=1000)
    long, fail = trace_json(db, "u1")["tool_calls"]
    expected = json.loads(cap_output(json.dumps(structured).encode(), 1000))  # what the PostToolUse hook would store
    assert long["output"] == expected and expected["stdout"].startswith("x" * 1000 + "\n…[cc-capture: truncated")
    assert fail["error"].startswith("E" * 1000 + "\n…[cc-capture: truncated") and len(fail["error"]) < 1100


def test_hook_captured_session_imported_later_is_one_session(paths, shared, db, transcripts, tmp_path):
    """Hooks win on timing, status and answer; the transcript fills model, usage, reasoning."""
    replay(paths, shared, SESSION_42067652)
    ingest_all(paths)
    before = trace_json(db, TRACE)
    stats = import_paths(db, [transcripts / "cc-2.1.328"])
    assert stats.traces == 1  # the other session's prompt (556a36c5; its /compact got no reply); 42067652 merged
    after = trace_json(db, TRACE)
    assert db.execute("SELECT count(*) FROM sessions WHERE session_id LIKE '4206%'").fetchone() == (1,)
    assert after["source"] == "both" and len(after["tool_calls"]) == len(before["tool_calls"]) == 8
    assert {c["source"] for c in after["tool_calls"]} == {"both"}
    assert [c["started_at"] for c in after["tool_calls"]] == [c["started_at"] for c in before["tool_calls"]]
    assert after["final_response"] == before["final_response"] and after["status"] == "completed"
    assert after["model"] == "claude-opus-5-5" and after["usage"]["messages"] >= 8
    denied = next(c for c in after["tool_calls"] if c["name"] == "Write")
    assert denied["status"] == "not_run"  # the hooks' verdict stands
    assert import_paths(db, [transcripts / "cc-2.1.328"]).traces == 0


def test_ccd_import_summary_json(paths, transcripts):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "cc_capture", "import", str(transcripts), "--json"],
                       capture_output=True, text=True, check=True)
    data = json.loads(p.stdout)
    # 14 prompts, less 3 built-in commands the model never answered (/compact twice, /mcp)
    assert data["sessions"] == 8 and data["traces"] == 11 and data["tool_calls"] == 321
    assert data["skipped"]["progress"] == 1722
    again = json.loads(subprocess.run([sys.executable, "-m", "cc_capture", "import", str(transcripts), "--json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert (again["traces"], again["tool_calls"], again["lines"]) == (0, 0, 0)


def test_2_0_flat_agent_files_link_by_task_prompt(db, transcripts, tmp_path):
    """2.0.x kept subagents in flat `agent-<id>.jsonl` files beside the session, with no .meta.json:
    the real 2.1.328 files laid out that way link by the agent's task prompt."""
    src = transcripts / "cc-2.1.328"
    project = tmp_path / "-home-user-project"
    project.mkdir()
    shutil.copy(src / "42067652-f236-40d4-9ddc-e0f17f556545.jsonl", project)
    shutil.copy(src / "42067652-f236-40d4-9ddc-e0f17f556545" / "subagents" / "agent-af633d67755f43666.jsonl", project)
    sessions = discover([project])
    assert [a.name for a in sessions["42067652-f236-40d4-9ddc-e0f17f556545"].agents] == ["agent-af633d67755f43666.jsonl"]
    import_paths(db, [project])
    calls = {c["tool_use_id"]: c for c in trace_json(db, TRACE)["tool_calls"]}
    assert calls["toolu_d00df597ce3d429790b0"]["parent_tool_use_id"] == "toolu_5a44b67579e445978d9d"


def test_a_tool_use_id_from_another_session_is_skipped_not_fatal(db, tmp_path):
    def session(sid):
        return "".join(json.dumps(r) + "\n" for r in [
            {"type": "user", "sessionId": sid, "uuid": f"u-{sid}", "message": {"role": "user", "content": "go on then"}},
            {"type": "assistant", "sessionId": sid, "message": {"id": f"m-{sid}", "content": [
                {"type": "tool_use", "id": "toolu_same", "name": "Bash", "input": {"command": "ls"}}]}}])
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.jsonl").write_text(session("a"))
    (tmp_path / "p" / "b.jsonl").write_text(session("b"))
    stats = import_paths(db, [tmp_path / "p"])
    assert stats.failed == {} and stats.tool_calls == 1
    assert stats.skipped["tool_use_id already used by another session"] == 1
    assert db.execute("SELECT count(*) FROM traces").fetchone() == (2,)


def test_a_failing_session_is_reported_and_the_others_imported(db, transcripts, monkeypatch):
    from cc_capture.transcripts import importer

    original = importer.Importer._assistant

    def broken(self, rec, state, *args):
        if state.session == "42067652-f236-40d4-9ddc-e0f17f556545":
            raise RuntimeError("simulated bug")
        return original(self, rec, state, *args)

    monkeypatch.setattr(importer.Importer, "_assistant", broken)
    stats = import_paths(db, [transcripts / "cc-2.1.328"])
    assert stats.failed == {"42067652-f236-40d4-9ddc-e0f17f556545": "RuntimeError: simulated bug"}
    assert db.execute("SELECT count(*) FROM traces WHERE session_id LIKE '4206%'").fetchone() == (0,)
    # one prompt; its `/compact` (never answered by the model) is not a trace
    assert db.execute("SELECT count(*) FROM traces WHERE session_id LIKE '556a%'").fetchone() == (1,)


# ---------------------------------------------------------------- slash commands


def test_slash_commands_the_model_never_answered_are_not_traces(db, shared):
    """Real transcripts: built-in commands (/mcp, /clear, /compact) run locally and get no
    assistant reply; commands the model works for (/init, /review, custom ones) stay traces."""
    stats = import_paths(db, [shared / "transcripts", shared / "transcripts-more"])
    # /compact twice, /mcp, /clear; a fifth (/compact, the last prompt of 556a36c5) waits for a reply
    # that may still be written: it is neither a trace nor counted yet
    assert stats.skipped["slash command with no reply"] == 4
    rows = db.execute("SELECT prompt, status, final_response, (SELECT count(*) FROM tool_calls c "
                      "WHERE c.trace_id = t.trace_id) FROM traces t WHERE prompt LIKE '/%'").fetchall()
    assert not [r for r in rows if r[2] is None and r[3] == 0]  # no command trace without calls or an answer
    commands = sorted(r[0].split()[0] for r in rows)
    assert commands == ["/code-review", "/code-review", "/handgemacht:create-beads", "/init", "/orchestrator",
                        "/review", "/review"]
    # /clear then /review under one prompt id: the trace is the command the model answered
    (prompt,) = db.execute("SELECT prompt FROM traces WHERE trace_id = '4007016a-8221-4863-9258-3b824973bf61'").fetchone()
    assert prompt == "/review Audit local-command wrapper handling."


def test_a_slash_command_answered_after_a_later_read_becomes_a_trace(db, tmp_path):
    """Reading is incremental: the command waits in the file's state until the model answers."""
    f = tmp_path / "p" / "s-cmd.jsonl"
    f.parent.mkdir()
    base = {"sessionId": "s-cmd", "cwd": "/w", "timestamp": "2026-01-01T00:00:00Z"}
    command = {**base, "type": "user", "uuid": "u1", "promptId": "p1", "message": {"role": "user", "content":
               "<command-name>/init</command-name>\n<command-message>init</command-message>\n<command-args></command-args>"}}
    f.write_text(json.dumps(command) + "\n")
    import_paths(db, [f])
    assert db.execute("SELECT count(*) FROM traces").fetchone() == (0,)
    reply = {**base, "type": "assistant", "uuid": "a1", "message": {"id": "m1", "role": "assistant", "model": "m",
             "content": [{"type": "text", "text": "I wrote CLAUDE.md."}]}}
    with f.open("a") as fh:
        fh.write(json.dumps(reply) + "\n")
    import_paths(db, [f])
    assert db.execute("SELECT trace_id, prompt, status, final_response FROM traces").fetchall() == [
        ("p1", "/init", "completed", "I wrote CLAUDE.md.")]


# ---------------------------------------------------------------- reading in ranges, in parallel

def _dump(db) -> dict:
    """Everything an import writes, in a stable order (the offsets' reading state aside)."""
    tables = {"sessions": "session_id", "traces": "trace_id", "tool_calls": "tool_use_id", "subagents": "agent_id",
              "message_usage": "message_id", "reasoning": "tool_use_id", "agent_links": "agent_id"}
    out = {t: db.execute(f"SELECT * FROM {t} ORDER BY {key}").fetchall() for t, key in tables.items()}
    out["offsets"] = db.execute("SELECT path, offset, size FROM transcript_offsets ORDER BY path").fetchall()
    return out


def test_ranges_split_anywhere_read_each_complete_line_once(tmp_path):
    from cc_capture.transcripts.reader import lines_between

    f = tmp_path / "t.jsonl"
    lines = [b"x" * n for n in (0, 1, 5, 17, 2, 40, 3)]
    f.write_bytes(b"\n".join(lines) + b"\n" + b"half a line")
    size = f.stat().st_size
    for step in range(1, size + 2):
        got, ends = [], []
        for at in range(0, size, step):
            for line, end in lines_between(f, at, min(at + step, size)):
                got.append(line)
                ends.append(end)
        assert got == lines, step  # the unterminated last line waits for its newline
        assert ends[-1] == size - len(b"half a line")


def test_parallel_import_stores_exactly_what_one_process_does(tmp_path, transcripts, monkeypatch):
    from cc_capture.transcripts import bulk, parser

    # every fixture file in several chunks, and the pool used whatever the size
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(parser, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", 0)
    serial, parallel = store.connect(tmp_path / "serial.db"), store.connect(tmp_path / "parallel.db")
    one = import_paths(serial, [transcripts], workers=0)
    two = import_paths(parallel, [transcripts], workers=2)
    assert one.failed == two.failed == {}
    assert (one.lines, one.traces, one.tool_calls, one.skipped) == (two.lines, two.traces, two.tool_calls, two.skipped)
    assert _dump(serial) == _dump(parallel)
    assert _dump(serial)["traces"]  # not two empty stores
    assert import_paths(parallel, [transcripts], workers=2).lines == 0  # idempotent in parallel too


def test_a_dead_worker_costs_nothing_but_time(tmp_path, transcripts):
    """A chunk whose worker process died is parsed by the importing process instead."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from cc_capture.transcripts.bulk import Prefetched, _Ahead
    from cc_capture.transcripts.parser import parse_chunk

    f = next((transcripts / "cc-2.1.328").glob("*.jsonl"))
    item = _Ahead((f, 0, f.stat().st_size, f.with_suffix("")))
    item.batch = Future()
    item.batch.set_exception(BrokenProcessPool("worker killed"))
    (chunk,) = Prefetched(0, [item]).chunks()
    assert chunk == parse_chunk(f, 0, f.stat().st_size, f.with_suffix("")) and chunk.lines


def test_prefetched_chunks_from_a_stale_offset_are_not_used(db, transcripts, tmp_path):
    """Another importer (the daemon) read the file meanwhile: chunks planned from the old offset
    are dropped and the file is read from where the store says."""
    from cc_capture.transcripts.bulk import Prefetched, _Ahead
    from cc_capture.transcripts.discovery import SessionFiles
    from cc_capture.transcripts.importer import Importer, ImportStats

    src = next((transcripts / "cc-2.1.328").glob("*.jsonl"))
    f = tmp_path / "p" / src.name
    f.parent.mkdir()
    f.write_bytes(src.read_bytes())
    import_paths(db, [f])
    with f.open("ab") as fh:  # the session goes on
        fh.write(src.read_bytes().splitlines(keepends=True)[-1])
    stale = Prefetched(0, [_Ahead((f, 0, f.stat().st_size, f.with_suffix("")))])  # planned before that import
    stats = ImportStats()
    with store.transaction(db) as conn:
        Importer(conn, stats).import_session(SessionFiles(f), {f: stale})
    assert stats.lines == 1  # only the appended line, nothing twice


def test_a_parallel_import_checkpoints_in_a_thread_not_in_its_commits(tmp_path, transcripts, monkeypatch):
    """The writer's commits never run a checkpoint (SQLite's automatic one is off on its connection
    while it imports): a thread copies the write-ahead log into the database after each commit,
    a last time at the end. The writer has a larger page cache meanwhile; the connection's own
    settings are back afterwards."""
    from cc_capture.transcripts import bulk, parser

    monkeypatch.setattr(bulk, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(parser, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(bulk, "COMMIT_EVERY_S", 0)  # a commit per session
    settings, checkpointers = [], []
    commit, close = bulk._SessionWriter.commit, bulk._Checkpointer.close

    def committing(writer):
        if writer.began is not None:
            settings.append(tuple(writer.conn.execute(f"PRAGMA {name}").fetchone()[0]
                                  for name in ("wal_autocheckpoint", "cache_size")))
        commit(writer)

    def closing(checkpointer):
        close(checkpointer)
        checkpointers.append(checkpointer)

    monkeypatch.setattr(bulk._SessionWriter, "commit", committing)
    monkeypatch.setattr(bulk._Checkpointer, "close", closing)
    db = store.connect(tmp_path / "x.db")
    before = (tmp_path / "x.db").stat().st_size
    stats = import_paths(db, [transcripts], workers=1)
    assert stats.traces and stats.failed == {}
    assert len(settings) > 5 and set(settings) == {(0, -bulk.IMPORT_CACHE_KIB)}
    (checkpointer,) = checkpointers
    assert checkpointer.done >= 1 and not checkpointer.thread.is_alive()
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert db.execute("PRAGMA cache_size").fetchone()[0] == -2000
    assert (tmp_path / "x.db").stat().st_size > before + 500_000  # the log's pages reached the database file


def test_parallel_calls_take_the_order_the_model_wrote_where_no_batch_hook_ordered_them(paths, shared, db,
                                                                                        transcripts):
    """Hooks of parallel calls start in any order, and older Claude Code fires no PostToolBatch hook
    to set them straight: the transcript puts them in the order the model wrote them."""
    events = [e for e in SESSION_42067652 if not e.startswith("PostToolBatch")]
    glob, grep = events.index("PreToolUse_parallel_Glob"), events.index("PreToolUse_parallel_Grep")
    events[glob], events[grep] = events[grep], events[glob]
    replay(paths, shared, events)
    ingest_all(paths)
    assert trace_json(db, TRACE)["tool_sequence"][:3] == ["Bash", "Grep", "Glob"]  # as their hooks fired
    import_paths(db, [transcripts / "cc-2.1.328"])
    after = trace_json(db, TRACE)
    assert after["tool_sequence"][:3] == ["Bash", "Glob", "Grep"]
    assert [c["name"] for c in after["tool_calls"] if c["agent_id"] is None] == after["tool_sequence"]


def test_a_failed_parallel_import_gives_the_connection_its_own_settings_back(tmp_path, transcripts, monkeypatch):
    """The larger page cache and the checkpoints in a thread end with the import, also when its
    commit fails: the connection (the daemon's, for one) goes on with its own settings."""
    from cc_capture.transcripts import bulk, parser

    monkeypatch.setattr(bulk, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(parser, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", 0)

    def failing(writer):
        if writer.began is not None:
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(bulk._SessionWriter, "commit", failing)
    db = store.connect(tmp_path / "x.db")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        import_paths(db, [transcripts], workers=1)
    assert db.execute("PRAGMA cache_size").fetchone()[0] == -2000
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert not [t for t in threading.enumerate() if t.name == "wal-checkpoint"]
