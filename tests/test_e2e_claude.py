"""End to end: the real Claude Code CLI (pinned), our hooks installed as `ccd hooks install` does,
a scripted Anthropic API on 127.0.0.1, and the stored traces checked field by field."""

import json
import subprocess
import sys
import uuid
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import pytest

from cc_capture import daemon, store
from cc_capture.config import Paths
from conftest import REPO, ingest_all, trace_json, traces_json, wait_for
from support.claude import claude_env, ensure_claude, run_claude
from support.scripted_api import Scenario, ScriptedAPI, text, tool

pytestmark = pytest.mark.claude

ALLOWED = ["--allowedTools", "Bash,Read,Glob,Grep,Agent"]


@pytest.fixture(scope="session")
def claude_bin():
    return ensure_claude()


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A temporary HOME with the hooks installed, a project folder, and a private cc-capture home."""
    home = tmp_path / "home"
    project = home / "project"
    project.mkdir(parents=True)
    cc_home = tmp_path / "cch"
    monkeypatch.setenv("CC_CAPTURE_HOME", str(cc_home))
    subprocess.run([sys.executable, "-m", "cc_capture", "hooks", "install", "--settings",
                    str(home / ".claude" / "settings.json")], check=True, capture_output=True)
    return home, project, Paths(cc_home).ensure()


def run(claude_bin, world, scenarios, prompt, *args):
    home, project, paths = world
    with ScriptedAPI(scenarios) as api:
        r = run_claude(claude_bin, claude_env(home, paths.home, api.url), project, prompt, *ALLOWED, *args)
    assert r.returncode == 0, r.stderr
    assert not api.unmatched, api.unmatched
    return r


def the_trace(paths, prompt_marker):
    db = store.connect(paths.db)
    try:
        (row,) = [t for t in traces_json(db, limit=100) if prompt_marker in (t["prompt"] or "")]
        return trace_json(db, row["trace_id"])
    finally:
        db.conn.close()


def test_sequential_parallel_and_failing_calls(claude_bin, world):
    _, project, paths = world
    (project / "notes.md").write_text("# notes\n")
    steps = [
        [text("First I list the folder."), tool("Bash", command="ls", description="list")],
        [text("Now two searches at once."), tool("Glob", pattern="*.md"), tool("Grep", pattern="zzz_nomatch", path=".")],
        [text("This one fails on purpose."), tool("Bash", command="echo oops >&2; exit 3", description="fail")],
        [text("Recovered. The folder holds notes.md.")],
    ]
    r = run(claude_bin, world, [Scenario("SEQ-MARKER", steps)], "SEQ-MARKER: inspect the project")
    assert "Recovered" in r.stdout
    ingest_all(paths)
    t = the_trace(paths, "SEQ-MARKER")
    assert t["prompt"] == "SEQ-MARKER: inspect the project"
    assert t["status"] == "completed" and t["final_response"] == "Recovered. The folder holds notes.md."
    assert t["tool_sequence"] == ["Bash", "Glob", "Grep", "Bash"] and t["n_tool_calls"] == 4
    ls, glob, grep, fail = t["tool_calls"]
    assert (ls["name"], ls["input"], ls["reasoning"]) == ("Bash", {"command": "ls", "description": "list"},
                                                          "First I list the folder.")
    assert "notes.md" in ls["output"]["stdout"] and not ls["is_error"] and ls["batch"] == 1
    assert ls["tool_use_id"] == steps[0][1]["id"] and ls["duration_ms"] >= 0 and ls["started_at"]
    assert glob["reasoning"] == "Now two searches at once." and grep["reasoning"] == ""
    assert glob["batch"] == grep["batch"] == 2
    assert glob["output"]["filenames"] == ["notes.md"] or glob["output"]["numFiles"] == 1
    assert fail["is_error"] and fail["status"] == "error" and "Exit code 3" in fail["error"] and "oops" in fail["error"]
    assert fail["reasoning"] == "This one fails on purpose." and fail["batch"] == 3
    assert all(c["agent_id"] is None and c["parent_tool_use_id"] is None for c in t["tool_calls"])
    db = store.connect(paths.db)
    assert db.execute("SELECT model FROM sessions").fetchone() == ("claude-opus-5-5",)


def test_foreground_and_background_subagents(claude_bin, world):
    _, _, paths = world
    main = Scenario("AGENTS-MARKER", [
        [text("Delegating in the foreground."),
         tool("Agent", description="fg echo", prompt="FG-SUB: echo fg", subagent_type="general-purpose",
              run_in_background=False)],
        [text("And one in the background."),
         tool("Agent", description="bg echo", prompt="BG-SUB: echo bg", subagent_type="general-purpose")],
        [text("Both launched.")],
        [text("Background agent reported back.")],
    ])
    fg = Scenario("FG-SUB", [[text("fg working"), tool("Bash", command="echo from-fg", description="fg")],
                             [text("fg done")]])
    bg = Scenario("BG-SUB", [[text("bg working"), tool("Bash", command="echo from-bg", description="bg")],
                             [text("bg done")]])
    run(claude_bin, world, [main, fg, bg], "AGENTS-MARKER: use subagents")
    ingest_all(paths)
    t = the_trace(paths, "AGENTS-MARKER")
    db = store.connect(paths.db)
    assert db.execute("SELECT count(*) FROM traces").fetchone() == (1,)  # no trace for the task-notification
    calls = t["tool_calls"]
    fg_call, bg_call = [c for c in calls if c["name"] == "Agent"]
    fg_inner = next(c for c in calls if c["input"].get("command") == "echo from-fg")
    bg_inner = next(c for c in calls if c["input"].get("command") == "echo from-bg")
    assert fg_inner["parent_tool_use_id"] == fg_call["tool_use_id"] and fg_inner["reasoning"] == "fg working"
    assert bg_inner["parent_tool_use_id"] == bg_call["tool_use_id"] and bg_inner["reasoning"] == "bg working"
    assert fg_inner["output"]["stdout"] == "from-fg" and bg_inner["output"]["stdout"] == "from-bg"
    assert fg_call["status"] == "ok" and bg_call["status"] == "async_launched"
    assert t["tool_sequence"] == ["Agent", "Agent"]
    subs = {s["parent_tool_use_id"]: s for s in t["subagents"]}
    assert subs[fg_call["tool_use_id"]]["background"] is False
    assert subs[fg_call["tool_use_id"]]["final_response"] == "fg done"
    assert subs[bg_call["tool_use_id"]]["background"] is True
    assert subs[bg_call["tool_use_id"]]["final_response"] == "bg done"
    assert t["status"] == "completed" and t["final_response"] in ("Both launched.", "Background agent reported back.")


def test_second_turn_with_resume(claude_bin, world):
    _, _, paths = world
    session = str(uuid.uuid4())
    sc = Scenario("TURNS-MARKER", [
        [text("Turn one."), tool("Bash", command="echo one", description="one")],
        [text("First answer.")],
        [text("Turn two."), tool("Bash", command="echo two", description="two")],
        [text("Second answer.")],
    ])
    run(claude_bin, world, [sc], "TURNS-MARKER: first", "--session-id", session)
    run(claude_bin, world, [sc], "and now the second turn", "--resume", session)
    ingest_all(paths)
    db = store.connect(paths.db)
    rows = traces_json(db, session=session)
    assert [r["prompt"] for r in rows] == ["and now the second turn", "TURNS-MARKER: first"]
    assert [r["final_response"] for r in rows] == ["Second answer.", "First answer."]
    assert [r["tool_sequence"] for r in rows] == [["Bash"], ["Bash"]]
    second = trace_json(db, rows[0]["trace_id"])
    assert second["tool_calls"][0]["input"]["command"] == "echo two"
    assert second["tool_calls"][0]["reasoning"] == "Turn two."
    assert db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)


def test_secrets_in_a_command_never_stored(claude_bin, world):
    _, _, paths = world
    key = "sk-ant-api03-" + "Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1Jh0Gf9Ed8Cb7Az6"
    pw = "Tr0ub4dor-and-3-horses"
    sc = Scenario("SECRET-MARKER", [
        [text(f"Exporting the key {key} now."),
         tool("Bash", command=f"export ANTHROPIC_API_KEY={key}; echo DB_PASSWORD={pw}", description="env")],
        [text(f"Done; the password was {pw} and DB_PASSWORD={pw}.")],
    ])
    run(claude_bin, world, [sc], f"SECRET-MARKER: use key {key}")
    ingest_all(paths)
    t = the_trace(paths, "SECRET-MARKER")
    (call,) = t["tool_calls"]
    assert "[REDACTED:" in call["input"]["command"] and "[REDACTED:" in call["output"]["stdout"]
    blob = b"".join(p.read_bytes() for p in paths.home.glob("cc-capture.db*"))
    assert key.encode() not in blob
    assert f"DB_PASSWORD={pw}".encode() not in blob


def test_eight_sessions_at_once_with_the_daemon(claude_bin, world):
    home, project, paths = world
    scenarios = [Scenario(f"PAR-{i}-MARKER", [
        [text(f"session {i} step"), tool("Bash", command=f"echo session-{i}", description="echo")],
        [text(f"session {i} done")],
    ]) for i in range(8)]
    daemon.start(paths)
    try:
        with ScriptedAPI(scenarios) as api:
            env = claude_env(home, paths.home, api.url)
            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(lambda i: run_claude(claude_bin, env, project, f"PAR-{i}-MARKER go", *ALLOWED),
                                        range(8)))
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results]

        def all_done():
            db = store.connect(paths.db)
            try:
                rows = traces_json(db, limit=50)
                ok = [trace_json(db, r["trace_id"]) for r in rows if r["status"] == "completed"]
                return len(ok) == 8 and all(t["tool_calls"][0]["reasoning"] for t in ok) and ok
            finally:
                db.conn.close()

        traces = wait_for(all_done, timeout=60, message="8 traces with reasoning, live")
    finally:
        daemon.stop(paths)
    for t in traces:
        i = t["prompt"].split("-")[1]
        assert t["final_response"] == f"session {i} done"
        assert t["tool_calls"][0]["output"]["stdout"] == f"session-{i}"
        assert t["tool_calls"][0]["reasoning"] == f"session {i} step"
    assert len({t["session_id"] for t in traces}) == 8


@pytest.fixture
def plugin_world(tmp_path, monkeypatch):
    """A temporary HOME with no hooks in settings.json: capture comes from the plugin alone."""
    home, cc_home = tmp_path / "home", tmp_path / "cch"
    (home / "project").mkdir(parents=True)
    monkeypatch.setenv("CC_CAPTURE_HOME", str(cc_home))
    return home, home / "project", cc_home, ["--plugin-dir", str(REPO)]


def test_repository_works_as_a_claude_code_plugin(claude_bin, plugin_world):
    """No settings.json hooks: Claude Code loads this checkout as a plugin (hooks/hooks.json)."""
    home, project, cc_home, plugin = plugin_world
    sc = Scenario("PLUGIN-MARKER", [[text("Via the plugin."), tool("Bash", command="echo plugged", description="e")],
                                    [text("Plugin capture works.")]])
    with ScriptedAPI([sc]) as api:
        r = run_claude(claude_bin, claude_env(home, cc_home, api.url), project, "PLUGIN-MARKER go",
                       "--allowedTools", "Bash", *plugin)
    assert r.returncode == 0, r.stderr
    paths = Paths(cc_home)
    ingest_all(paths)
    t = the_trace(paths, "PLUGIN-MARKER")
    assert t["final_response"] == "Plugin capture works." and t["tool_sequence"] == ["Bash"]
    assert t["tool_calls"][0]["output"]["stdout"] == "plugged" and t["tool_calls"][0]["reasoning"] == "Via the plugin."


def test_rate_slash_command_from_inside_claude_code(claude_bin, plugin_world):
    """`/cc-capture:rate up <note>` (the plugin's command) rates the previous trace via `ccd rate`."""
    home, project, cc_home, plugin = plugin_world
    task = Scenario("TASK-MARKER", [[text("Checking."), tool("Bash", command="echo ok", description="e")],
                                    [text("The task is done.")]])
    confirm = Scenario("cc-capture:rate", [[text("Rated it up.")]])
    with ScriptedAPI([confirm, task]) as api:  # the rating prompt quotes the task's marker: match it first
        env = claude_env(home, cc_home, api.url)
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # where `ccd` is installed
        assert run_claude(claude_bin, env, project, "TASK-MARKER go", "--allowedTools", "Bash", *plugin).returncode == 0
        ingest_all(Paths(cc_home))
        r = run_claude(claude_bin, env, project, "/cc-capture:rate up clear and correct",
                       "--allowedTools", "Bash(ccd rate:*)", *plugin)
    assert r.returncode == 0, r.stderr
    assert "rated " in json.dumps(api.requests[-1]["messages"])  # the command's output reached the model
    paths = Paths(cc_home)
    ingest_all(paths)
    rated = the_trace(paths, "TASK-MARKER")
    assert rated["feedback"]["rating"] == "up" and rated["feedback"]["note"] == "clear and correct"
    assert rated["qualifies"] is True and "include: rated up by the user" in rated["gate_reasons"]
    command = the_trace(paths, "/cc-capture:rate")
    assert command["qualifies"] is False and "exclude: a cc-capture command, not a task" in command["gate_reasons"]


def _comparable(call):
    """A call as both sources record it. Subagent transcripts keep a tool's text result where
    hooks have the structured response: compare Bash by its stdout then."""
    out = call["output"]
    if isinstance(out, dict) and "stdout" in out:
        out = out["stdout"]
    return {k: call[k] for k in ("tool_use_id", "name", "input", "is_error", "status", "reasoning", "agent_id",
                                 "parent_tool_use_id")} | {"output": out if not call["is_error"] else None,
                                                            "batch_group": call["batch"] is not None}


COMPARE_STEPS = [
    [text("Look first."), tool("Bash", command="ls", description="ls")],
    [text("Two searches."), tool("Glob", pattern="*.md"), tool("Grep", pattern="x", path=".")],
    [text("This fails."), tool("Bash", command="echo bad >&2; exit 2", description="f")],
    [text("An edit that cannot apply."), tool("Edit", file_path="PLACEHOLDER", old_string="NOT THERE", new_string="y")],
    [text("Delegate."), tool("Agent", description="fg", prompt="CMPSUB: go", subagent_type="general-purpose",
                             run_in_background=False)],
    [text("All compared.")],
]


def _compare_scenario(project):
    (project / "a.md").write_text("x")
    steps = [[dict(b, input=dict(b["input"], file_path=str(project / "a.md"))) if b.get("name") == "Edit" else b
              for b in turn] for turn in COMPARE_STEPS]
    return [Scenario("CMP-MARKER", steps),
            Scenario("CMPSUB", [[text("sub step"), tool("Bash", command="echo sub", description="s")],
                                [text("sub done")]])]


def test_import_equals_live_capture(claude_bin, world, tmp_path):
    """The same session, captured live by hooks and imported from its transcript into another store."""
    from cc_capture.transcripts.bulk import import_paths

    home, project, paths = world
    run(claude_bin, world, _compare_scenario(project), "CMP-MARKER go", "--allowedTools", "Edit")
    ingest_all(paths)
    live = store.connect(paths.db)
    imported = store.connect(tmp_path / "imported.db")
    stats = import_paths(imported, [home / ".claude" / "projects"])
    assert stats.traces == 1 and stats.tool_calls == 7
    (row,) = traces_json(live)
    a, b = trace_json(live, row["trace_id"]), trace_json(imported, row["trace_id"])
    for key in ("trace_id", "session_id", "prompt", "final_response", "status", "tool_sequence", "n_tool_calls"):
        assert a[key] == b[key], key
    assert [_comparable(c) for c in a["tool_calls"]] == [_comparable(c) for c in b["tool_calls"]]
    groups = lambda t: sorted(sorted(c["tool_use_id"] for c in t["tool_calls"] if c["batch"] == n)
                              for n in {c["batch"] for c in t["tool_calls"]})
    assert groups(a) == groups(b)  # the same calls share an assistant message
    edit = next(c for c in b["tool_calls"] if c["name"] == "Edit")
    assert edit["status"] == "error" and "String to replace not found" in edit["error"]
    assert (a["source"], b["source"]) == ("both", "transcript")  # live capture reads the transcript too


def test_a_builtin_slash_command_is_no_trace_from_hooks_either(claude_bin, world):
    """Built-in commands run locally: Claude Code fires no UserPromptSubmit for them (only the
    session's start and end) and asks the model nothing, so live capture has no prompt to make a
    trace of; the transcript's side drops an unanswered command itself (test_transcripts)."""
    home, project, paths = world
    run(claude_bin, world, [], "/mcp")  # /ide and /release-notes behave alike (checked by hand)
    ingest_all(paths)  # the hook events, then each session's transcript
    db = store.connect(paths.db)
    events = [name for (name,) in db.execute("SELECT event FROM events")]
    assert events and set(events) == {"SessionStart", "SessionEnd"}, events
    assert db.execute("SELECT count(*) FROM traces").fetchone() == (0,)


def test_calls_without_hook_events_are_reconciled_from_the_transcript(claude_bin, world):
    """With no PostToolBatch hook (older Claude Code), a call rejected by validation fires no hook at
    all; the transcript adds it, in its place, marked as coming from the transcript."""
    home, project, paths = world
    settings = home / ".claude" / "settings.json"
    data = json.loads(settings.read_text())
    del data["hooks"]["PostToolBatch"]
    settings.write_text(json.dumps(data))
    run(claude_bin, world, _compare_scenario(project), "CMP-MARKER go", "--allowedTools", "Edit")
    ingest_all(paths)  # hook events, then the session's transcript (as the daemon does)
    after = the_trace(paths, "CMP-MARKER")
    edit = next(c for c in after["tool_calls"] if c["name"] == "Edit")
    assert edit["source"] == "transcript" and edit["status"] == "error" and edit["reasoning"] == "An edit that cannot apply."
    assert after["source"] == "both" and after["tool_sequence"] == ["Bash", "Glob", "Grep", "Bash", "Edit", "Agent"]
    assert {c["source"] for c in after["tool_calls"] if c["name"] != "Edit"} == {"both"}


def test_daemon_mirrors_sessions_that_fired_no_hooks(claude_bin, tmp_path, monkeypatch):
    """Claude Code with no cc-capture hooks at all: the daemon imports its transcript as it is written."""
    home, cc_home = tmp_path / "home", tmp_path / "cch"
    project = home / "project"
    project.mkdir(parents=True)
    (home / ".claude" / "projects").mkdir(parents=True)
    monkeypatch.setenv("CC_CAPTURE_HOME", str(cc_home))
    monkeypatch.setenv("HOME", str(home))  # the daemon watches $HOME/.claude/projects
    paths = Paths(cc_home)
    daemon.start(paths)
    try:
        sc = Scenario("MIRROR-MARKER", [[text("Unhooked."), tool("Bash", command="echo m", description="m")],
                                        [text("Mirrored answer.")]])
        with ScriptedAPI([sc]) as api:
            assert run_claude(claude_bin, claude_env(home, cc_home, api.url), project, "MIRROR-MARKER go",
                              "--allowedTools", "Bash").returncode == 0

        def mirrored():
            db = store.connect(paths.db)
            try:
                rows = [r for r in traces_json(db) if r["status"] == "completed"]
                return rows and trace_json(db, rows[0]["trace_id"])
            finally:
                db.conn.close()

        t = wait_for(mirrored, timeout=30, message="transcript mirrored")
    finally:
        daemon.stop(paths)
    assert t["prompt"] == "MIRROR-MARKER go" and t["final_response"] == "Mirrored answer."
    assert t["source"] == "transcript" and t["tool_calls"][0]["reasoning"] == "Unhooked."
    assert store.connect(paths.db).execute("SELECT count(*) FROM events").fetchone() == (0,)
