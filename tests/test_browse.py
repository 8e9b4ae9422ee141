"""`ccd browse`: the trace tree, the metadata and canned queries, and a real Datasette process over
a real store: pages, links, read-only, loopback only. (The browser test is test_browse_e2e.py.)"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from cc_capture import fields, store
from conftest import emit, ingest_all, wait_for
from support import readme

pytest.importorskip("datasette", reason="the browse extra is not installed (tests/run.sh installs it)")

from cc_capture.browse import serve  # noqa: E402
from cc_capture.browse.metadata import QUERIES, build_metadata  # noqa: E402
from cc_capture.browse.models import Registry, Version, chart_svg, registry  # noqa: E402
from cc_capture.browse.view import PREVIEW_CHARS, markdown, trace_view  # noqa: E402


def call(tid, name, batch, agent=None, reasoning="", is_error=False, output="ok", error=None, parent=None):
    return {"tool_use_id": tid, "name": name, "input": {"command": f"run {tid}"}, "output": output,
            "is_error": is_error, "error": error, "status": "error" if is_error else "ok", "reasoning": reasoning,
            "agent_id": agent, "parent_tool_use_id": parent, "batch": batch, "started_at": None,
            "duration_ms": 5, "source": "hooks"}


def sub(agent_id, parent):
    return {"agent_id": agent_id, "agent_type": "general-purpose", "parent_tool_use_id": parent, "background": False,
            "started_at": None, "ended_at": None, "final_response": f"{agent_id} done"}


def trace_of(calls, subagents=(), answer="Done."):
    return {"trace_id": "t1", "tool_calls": list(calls), "subagents": list(subagents), "final_response": answer}


# ---------------------------------------------------------------- the trace tree


def test_steps_follow_assistant_messages_and_nest_subagents():
    t = trace_of([
        call("a", "Bash", 1, reasoning="First I look."),
        call("b", "Glob", 2, reasoning="Two at once."), call("c", "Grep", 2),
        call("d", "Agent", 3, reasoning="Delegate."),
        call("e", "Bash", 4, agent="sub1", reasoning="sub works", parent="d"),
        call("f", "Bash", 5, reasoning="It fails.", is_error=True, output=None, error="Exit code 3"),
    ], [sub("sub1", "d")])
    view = trace_view(t)
    assert [[c.call["tool_use_id"] for c in s.calls] for s in view.steps] == [["a"], ["b", "c"], ["d"], ["f"]]
    assert [s.reasoning for s in view.steps] == [["First I look."], ["Two at once."], ["Delegate."], ["It fails."]]
    (agent,) = view.steps[2].calls[0].subagents
    assert agent.subagent["agent_id"] == "sub1"
    assert [[c.call["tool_use_id"] for c in s.calls] for s in agent.steps] == [["e"]]
    assert agent.steps[0].reasoning == ["sub works"]
    assert view.steps[3].calls[0].output.full == "Exit code 3"  # a failed call shows its error
    assert view.orphans == []


def test_calls_without_a_batch_are_steps_of_their_own_and_unknown_agents_are_kept():
    t = trace_of([call("a", "Read", None), call("b", "Read", None), call("x", "Bash", 7, agent="lost")])
    view = trace_view(t)
    assert [len(s.calls) for s in view.steps] == [1, 1]
    (orphan,) = view.orphans
    assert orphan.subagent["agent_id"] == "lost" and orphan.steps[0].calls[0].call["tool_use_id"] == "x"


def test_long_outputs_are_cut_with_the_whole_text_kept():
    long = "line\n" * PREVIEW_CHARS
    view = trace_view(trace_of([call("a", "Bash", 1, output={"stdout": long, "stderr": "", "interrupted": False})]))
    out = view.steps[0].calls[0].output
    assert out.cut and out.full == long and out.preview == long[:PREVIEW_CHARS]
    short = trace_view(trace_of([call("a", "Bash", 1, output="tiny")])).steps[0].calls[0].output
    assert not short.cut and short.preview == short.full == "tiny"


def test_markdown_is_rendered_and_html_in_it_escaped():
    html = markdown("# Title\n\n**bold** and `code`\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))")
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html


# ---------------------------------------------------------------- documentation, metadata, queries


def test_every_column_of_the_store_is_described(db):
    """Descriptions come from cc_capture.fields; a column added without one fails here."""
    for table in fields.TABLES:
        assert table in db.table_names(), f"fields.TABLES describes {table}, which the store does not have"
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        assert columns == set(fields.TABLES[table].columns), f"{table}: describe its columns in cc_capture/fields.py"


def test_json_keys_are_described_in_fields_and_readme(paths, shared):
    from conftest import SESSION_42067652, replay

    replay(paths, shared, SESSION_42067652)
    ingest_all(paths)
    p = subprocess.run([sys.executable, "-m", "cc_capture", "traces", "show", "a5432553", "--json"],
                       capture_output=True, text=True, check=True)
    t = json.loads(p.stdout)
    assert set(t) == set(fields.TRACE) | set(fields.TRACE_DETAIL) == readme.keys("traces show ID")
    assert all(set(c) == set(fields.TOOL_CALL) == readme.keys("traces show ID", "tool_calls") for c in t["tool_calls"])
    assert all(set(s) == set(fields.SUBAGENT) == readme.keys("traces show ID", "subagents") for s in t["subagents"])
    assert set(fields.TRACE) == readme.keys("traces list")


def test_metadata_describes_tables_and_every_canned_query_runs(db, paths, shared):
    from conftest import SESSION_42067652, replay

    replay(paths, shared, SESSION_42067652)
    ingest_all(paths)
    meta = build_metadata(paths.db)
    tables = meta["databases"]["cc-capture"]["tables"]
    assert tables["tool_calls"]["columns"]["batch"] == fields.TOOL_CALL["batch"]
    assert tables["journal_done"]["hidden"] is True
    conn = sqlite3.connect(f"file:{paths.db}?mode=ro", uri=True)
    conn.create_function("fts_query", 1, store.fts_query)
    for name, q in meta["databases"]["cc-capture"]["queries"].items():
        conn.execute(q["sql"], {"q": "scripted", "tool": "Bash"}).fetchall()  # valid SQL on the real schema
    assert set(QUERIES) <= set(meta["databases"]["cc-capture"]["queries"])


# ---------------------------------------------------------------- the models page, without and with a registry


def test_an_empty_registry_has_no_models(db):
    reg = registry(db)
    assert reg.versions == [] and reg.champion is None and chart_svg(reg) == ""


def fill_registry(db, tmp_path):
    """Three versions through the registry's own calls: the base (champion, then retired), a
    promoted fine-tune and a rejected one, each with an evaluation."""
    from cc_capture.evaluate import registry as reg
    from cc_capture.evaluate.scoring import Summary

    def model(n, runs, score, valid):
        m = reg.register(db, base_model="tiny-llama", runs=runs, path=tmp_path / f"m{n}", sha256=f"sha{n}",
                         reasons=[f"trained by {runs[-1]}" if runs else "the untuned base model"])
        metrics = {"valid_call_rate": valid, "tool_accuracy": score, "behavioural_similarity": score}
        reg.save(db, reg.Evaluation(m.sha256, "set1", time.time(), 40, 8,
                                    Summary(metrics, {k: 40 for k in metrics}, {k: None for k in metrics}), [], {}))
        return m

    base = model(1, [], 0.12, 0.05)
    reg.set_status(db, base.version, reg.ModelStatus.CHAMPION, ["the untuned base model is the first champion"])
    good = model(2, ["sft-1"], 0.58, 0.9)
    reg.set_status(db, good.version, reg.ModelStatus.CHAMPION, ["behavioural_similarity 0.58 > 0.12 (p=0.01)"])
    bad = model(3, ["sft-2"], 0.31, 0.4)
    reg.set_status(db, bad.version, reg.ModelStatus.REJECTED, ["behavioural_similarity 0.31 <= 0.58"])


def test_models_from_the_registry(db, tmp_path):
    fill_registry(db, tmp_path)
    reg = registry(db)
    assert [v.version for v in reg.versions] == [1, 2, 3]
    assert [v.status for v in reg.versions] == ["retired", "champion", "rejected"]
    assert reg.champion.version == 2 and reg.champion.behavioural_similarity == 0.58
    assert reg.champion.metrics["valid_call_rate"] == 0.9
    assert reg.metric_names == ["valid_call_rate", "tool_accuracy", "behavioural_similarity"]
    assert reg.versions[2].events[-1]["reasons"] == ["behavioural_similarity 0.31 <= 0.58"]
    assert "replaced by v2" in reg.versions[0].events[-1]["reasons"]


def test_chart_marks_the_champion():
    reg = Registry([Version(1, "retired", "base", 100.0, 0.31), Version(2, "champion", "base", 200.0, 0.55),
                          Version(3, "rejected", "base", 300.0, 0.42), Version(4, "candidate", "base", 400.0, None)])
    svg = chart_svg(reg)
    assert svg.startswith("<svg") and svg.count("<circle") == 4  # 3 scored points + the champion's ring
    assert 'data-version="2"' in svg and "champion" in svg and "v4" not in svg
    assert reg.champion.version == 2


# ---------------------------------------------------------------- a real Datasette


def get(url, data=None):
    req = urllib.request.Request(url, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def counts(path):
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("traces", "tool_calls", "feedback")]
    finally:
        conn.close()


def listening(port):
    """Local addresses of the sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = []
    for name in ("tcp", "tcp6"):
        try:
            lines = open(f"/proc/net/{name}").read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:  # 0A: LISTEN
                found.append(addr)
    return found


@pytest.fixture
def captured(paths, shared):
    from conftest import SESSION_42067652, replay

    replay(paths, shared, SESSION_42067652)
    base = {"session_id": "s2", "cwd": "/w"}
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt_id": "later",
                 "prompt": "Explain the <b>flaky</b> test"})
    emit(paths, {**base, "hook_event_name": "Stop", "prompt_id": "later",
                 "last_assistant_message": "A **race** in setup.\n\n<img src=x onerror=alert(1)>"})
    ingest_all(paths)
    return paths


WRITE_QUERY = {"databases": {"cc-capture": {"queries": {"try_to_write": {
    "sql": "INSERT INTO feedback (trace_id, rating, note, rated_at) VALUES ('later', 'down', 'via browse', 0)",
    "write": True}}}}}


def test_served_read_only_on_loopback_with_pages_and_queries(captured):
    before = counts(captured.db)
    with serve(captured, extra_metadata=WRITE_QUERY) as server:
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        assert listening(port) == ["0100007F"]  # 127.0.0.1 only, no IPv6, no 0.0.0.0
        status, home = get(server.url)
        assert status == 200 and 'href="/cc-capture/recent_traces"' in home

        status, body = get(server.url + "cc-capture/recent_traces.json?_shape=objects")
        rows = json.loads(body)["rows"]
        assert [r["trace_id"] for r in rows] == ["later", "a5432553-5623-4791-bb0f-a31532771193"]
        status, page = get(server.url + "cc-capture/recent_traces")
        assert '<a href="/-/trace/later">later</a>' in page  # lists link to the trace page

        status, body = get(server.url + "cc-capture/search.json?_shape=objects&q=flaky")
        assert [r["trace_id"] for r in json.loads(body)["rows"]] == ["later"]
        for name in QUERIES:
            status, body = get(server.url + f"cc-capture/{name}.json?q=x&tool=Bash")
            assert status == 200, (name, body[:500])

        status, page = get(server.url + "cc-capture/tool_calls")
        assert status == 200 and fields.TOOL_CALL["batch"] in page  # column descriptions shown

        status, page = get(server.url + "-/trace/later")
        assert status == 200 and "&lt;b&gt;flaky&lt;/b&gt;" in page  # the prompt, escaped
        assert "<strong>race</strong>" in page and "<img src=x" not in page  # Markdown, HTML escaped
        status, page = get(server.url + "-/trace/a5432553-5623-4791-bb0f-a31532771193")
        assert status == 200 and "echo hello" in page and "All scenario steps complete." in page
        assert get(server.url + "-/trace/nope")[0] == 404

        status, page = get(server.url + "-/models")
        assert status == 200 and "No models yet" in page

        # Writes are refused: arbitrary SQL must be a SELECT, and a write canned query fails in SQLite.
        status, body = get(server.url + "cc-capture.json?sql=" + urllib.parse.quote("DELETE FROM traces"))
        assert status == 400 and "Statement must be a SELECT" in body
        status, body = get(server.url + "cc-capture/try_to_write", data=b"_json=1")
        reply = json.loads(body)
        assert reply["ok"] is False and "attempt to write a readonly database" in reply["message"], reply
    assert counts(captured.db) == before
    with pytest.raises(ConnectionError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_models_page_and_queries_over_a_registry(captured, tmp_path):
    db = store.connect(captured.db)
    fill_registry(db, tmp_path)
    db.conn.close()
    with serve(captured) as server:
        status, page = get(server.url + "-/models")
        assert status == 200 and "No models yet" not in page
        assert page.count("<circle") == 4 and ">champion</text>" in page  # 3 versions, the champion ringed
        assert 'the champion is <strong class="cc-champion">v2</strong>' in page
        assert "behavioural_similarity 0.31 &lt;= 0.58" in page and "replaced by v2" in page
        assert "<th>valid_call_rate</th>" in page and "<td>0.900</td>" in page
        rows = json.loads(get(server.url + "cc-capture/models.json?_shape=objects")[1])["rows"]
        assert [(r["version"], r["status"], r["behavioural_similarity"]) for r in rows] == [
            (3, "rejected", 0.31), (2, "champion", 0.58), (1, "retired", 0.12)]
        rows = json.loads(get(server.url + "cc-capture/evaluations.json?_shape=objects")[1])["rows"]
        assert sorted(r["valid_call_rate"] for r in rows) == [0.05, 0.4, 0.9]


def test_works_while_the_daemon_writes(captured):
    from cc_capture import daemon

    daemon.start(captured)
    try:
        with serve(captured) as server:
            base = {"session_id": "s3", "cwd": "/w"}
            emit(captured, {**base, "hook_event_name": "UserPromptSubmit", "prompt_id": "live", "prompt": "Live one"})
            emit(captured, {**base, "hook_event_name": "Stop", "prompt_id": "live", "last_assistant_message": "Yes."})
            wait_for(lambda: "Live one" in get(server.url + "-/trace/live")[1], timeout=30,
                     message="a trace written by the daemon while browsing")
    finally:
        daemon.stop(captured)


def test_ccd_browse_prints_the_url_and_stops_datasette_with_it(captured):
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    busy = port.getsockname()[1]
    port.listen()
    try:
        p = subprocess.run([sys.executable, "-m", "cc_capture", "browse", "--no-open", "--port", str(busy)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and f"port {busy} is in use" in p.stderr
    finally:
        port.close()
    proc = subprocess.Popen([sys.executable, "-m", "cc_capture", "browse", "--no-open"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, COLUMNS="200"))
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and "read-only" in line
        url = line[line.index("http://"):].split()[0]
        assert get(url + "-/trace/later")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


def test_without_datasette_it_says_what_to_install(paths):
    code = ("import sys; sys.modules['datasette'] = None; from cc_capture.cli.main import main; "
            "sys.argv = ['ccd', 'browse', '--no-open']; main()")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "Datasette is not installed" in p.stderr and "install.sh" in p.stderr
