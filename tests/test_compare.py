"""`ccd compare` end to end with the real Claude Code CLI (pinned): Claude answers two prompts in a git
repository (a scripted Messages API); the local model (a second scripted API standing in for Ollama's
`/v1/messages`, the same protocol) replays them in temporary worktrees, following Claude's path in one
and leaving it in the other. Checked: the captured local traces and their origin, the scores, the
DPO pair, the stored comparison, that nothing outside the worktree changed, and that a session a
comparison made a pair from is spent for evaluation (out of every later eval set, its pair trained on)."""

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from unittest import mock

import pytest

from cc_capture import daemon, store
from cc_capture.config import CompareSettings, DatasetSettings, DeploySettings, Settings, SystemPromptChoice
from cc_capture.datasets.build import split_of
from cc_capture.pipeline.compare import CompareError, run_compare
from cc_capture.scheduler.state import qualifying_since
from conftest import db_rows, ingest_all, relocated_home, trace_json, traces_json
from support import readme
from support.claude import claude_env, ensure_claude, run_claude
from support.scripted_api import Scenario, ScriptedAPI, text, tool, working_folder

pytestmark = pytest.mark.claude

FOLLOW, DIVERGE = "FOLLOW-MARKER", "DIVERGE-MARKER"
ANSWER = "parse() reads the lines and reports every bad one with its line number."


def held_out_session_ids(n: int) -> list[str]:
    """Session ids the default split holds out (the eval split: what `ccd compare` replays)."""
    ids = (str(uuid.uuid5(uuid.NAMESPACE_URL, f"compare-{i}")) for i in range(10_000))
    return [sid for sid in ids if split_of(sid, DatasetSettings().eval_percent) == "eval"][:n]


def read_parser(request):
    return [text("Now the function itself."), tool("Read", file_path=working_folder(request) + "/parser.py")]


def read_missing(request):
    return [text("Maybe it is called parse.py."), tool("Read", file_path=working_folder(request) + "/parse.py")]


def claude_turns(marker: str) -> Scenario:
    if marker == FOLLOW:  # a failed call, then another that works: a self-correction pair too
        return Scenario(marker, [read_missing, [text("Let me find the parser."), tool("Grep", pattern="def parse")],
                                 read_parser, [text(ANSWER)]])
    return Scenario(marker, [[text("Let me find the parser."), tool("Glob", pattern="*.py")], read_parser,
                             [text(ANSWER)]])


def local_turns() -> list[Scenario]:
    follow = Scenario(FOLLOW, [read_missing, [text("Let me find the parser."), tool("Grep", pattern="def parse")],
                               read_parser, [text(ANSWER)]])
    diverge = Scenario(DIVERGE, [[text("I look for notes."), tool("Grep", pattern="TODO")],
                                 [text("There are no notes about the parser.")]])
    return [follow, diverge]


def edits_turns(outside: Path) -> list[Scenario]:
    """With --allow-edits: an edit inside the worktree, then a write and a shell command outside it
    (on the FOLLOW prompt: the first comparison spent the DIVERGE one)."""
    return [Scenario(FOLLOW, [
        read_parser,
        lambda request: [text("I make it skip blank lines."),
                         tool("Edit", file_path=working_folder(request) + "/parser.py", old_string="if l]",
                              new_string="if l.strip()]")],
        [text("And a note beside the project."), tool("Write", file_path=str(outside / "note.txt"), content="x")],
        [text("And one by the shell."), tool("Bash", command=f"touch {outside}/shell.txt", description="touch")],
        [text("Done: parse() skips blank lines now.")]])]


def snapshot(project: Path) -> dict:
    """Everything a replay could have changed in the user's checkout."""
    files = {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(project.rglob("*")) if p.is_file() and ".git" not in p.relative_to(project).parts}
    git = lambda *a: subprocess.run(["git", *a], cwd=project, capture_output=True, text=True).stdout  # noqa: E731
    return {"files": files, "status": git("status", "--porcelain"), "head": git("rev-parse", "HEAD"),
            "refs": git("for-each-ref"), "worktrees": git("worktree", "list", "--porcelain"),
            "stash": git("stash", "list")}


def eval_set_now(paths):
    """The eval set evaluation takes now (an SFT set built from the store, less the spent sessions),
    and the folder it came from; None without the training extra."""
    if importlib.util.find_spec("datasets") is None:
        return None
    from cc_capture.datasets.build import build
    from cc_capture.evaluate.items import from_dataset

    db = store.connect(paths.db)
    try:
        built = build(db, paths.datasets, DatasetSettings(), SystemPromptChoice.COMPACT)
        return from_dataset(built.path, 1000, store.spent_sessions(db)), built.path
    finally:
        db.conn.close()


def ccd_in(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True, timeout=600,
                       env=dict(env, COLUMNS="250"))
    if check and p.returncode != 0:
        raise AssertionError(f"ccd {' '.join(args)} failed ({p.returncode}): {p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    claude_bin = ensure_claude()
    root = tmp_path_factory.mktemp("compare")
    home, cc_home = root / "home", root / "cch"
    project = home / "project"
    project.mkdir(parents=True)
    (project / "parser.py").write_text("def parse(text):\n    return [l for l in text.splitlines() if l]\n")
    (project / "README.md").write_text("# A parser\n")
    git = lambda *a: subprocess.run(["git", *a], cwd=project, check=True, capture_output=True)  # noqa: E731
    git("init", "-q", "-b", "main")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "parser")
    with relocated_home(cc_home) as paths:
        subprocess.run([sys.executable, "-m", "cc_capture", "hooks", "install", "--settings",
                        str(home / ".claude" / "settings.json")], check=True, capture_output=True)
        with ScriptedAPI([claude_turns(FOLLOW), claude_turns(DIVERGE)]) as claude_api:
            env = claude_env(home, cc_home, claude_api.url)
            for marker, sid in zip((FOLLOW, DIVERGE), held_out_session_ids(2)):
                r = run_claude(claude_bin, env, project, f"{marker}: how does the parser handle bad lines?",
                               "--allowedTools", "Read,Grep,Glob", "--session-id", sid)
                assert r.returncode == 0, r.stderr
            assert not claude_api.unmatched
        ingest_all(paths)
        before = snapshot(project)
        eval_before = eval_set_now(paths)
        with ScriptedAPI(local_turns(), ollama_models=["cc-capture:latest", "cc-capture:v1"]) as ollama:
            env = dict(claude_env(home, cc_home, "http://127.0.0.1:9"), CC_CAPTURE_COMPARE__CLAUDE=str(claude_bin),
                       CC_CAPTURE_DEPLOY__OLLAMA_HOST=ollama.url)
            settings = Settings(deploy=DeploySettings(ollama_host=ollama.url),
                                compare=CompareSettings(claude=str(claude_bin)))
            with pytest.raises(CompareError, match="the model qwen3:8b is not in Ollama") as missing:
                run_compare(paths, settings, tag="qwen3:8b")
            # (here, while there are prompts to replay: the comparisons below spend them all)
            with pytest.raises(CompareError) as no_claude:
                run_compare(paths, Settings(compare=CompareSettings(claude="/nonexistent/claude")))
            report = json.loads(ccd_in(env, "compare", "--json").stdout)
            assert not ollama.unmatched
            local_models = {r["model"] for r in ollama.requests}
        eval_after = eval_set_now(paths)
        if eval_before is not None:  # the folder built before the comparison, read now
            from cc_capture.evaluate.items import from_dataset

            db = store.connect(paths.db)
            eval_after += (from_dataset(eval_before[1], 1000, store.spent_sessions(db)),)
            db.conn.close()
        down = ccd_in(env, "compare", check=False)  # the stand-in is gone: nothing listens there any more
        # this one with the daemon running, as a user has it: it ingests the replay, compare waits for it
        daemon_env = {"HOME": str(home), "CC_CAPTURE_CAPTURE__MIRROR_TRANSCRIPTS": "false"}
        with ScriptedAPI(edits_turns(root), ollama_models=["cc-capture:v1"]) as ollama, \
                mock.patch.dict(os.environ, daemon_env):
            # and a turn limit: the four calls are four turns, the answer would be a fifth
            env = dict(env, CC_CAPTURE_DEPLOY__OLLAMA_HOST=ollama.url, CC_CAPTURE_COMPARE__MAX_TURNS="4")
            daemon.start(paths)
            try:
                edits = json.loads(ccd_in(env, "compare", "--limit", "1", "--allow-edits", "--model",
                                          "cc-capture:v1", "--json").stdout)
            finally:
                daemon.stop(paths)
            assert not ollama.unmatched
        yield {"paths": paths, "env": env, "report": report, "project": project, "before": before,
               "after": snapshot(project), "local_models": local_models, "refused": (missing, down, no_claude),
               "edits": edits, "outside": root, "eval_before": eval_before, "eval_after": eval_after}


def items_by_marker(report):
    return {marker: next(i for i in report["items"] if i["prompt"].startswith(marker)) for marker in (FOLLOW, DIVERGE)}


def test_the_local_model_runs_in_claude_code_and_is_captured_as_local(compared):
    paths, report = compared["paths"], compared["report"]
    assert set(report) == readme.keys("compare") == {"compare_id", "model", "items", "summary", "dpo_pairs"}
    assert report["model"] == "cc-capture:latest" and compared["local_models"] == {"cc-capture:latest"}
    follow, diverge = items_by_marker(report).values()
    assert follow["local"]["status"] == diverge["local"]["status"] == "ok"
    assert follow["local"]["tool_sequence"] == follow["claude"]["tool_sequence"] == ["Read", "Grep", "Read"]
    assert diverge["local"]["tool_sequence"] == ["Grep"] and diverge["claude"]["tool_sequence"] == ["Glob", "Read"]
    db = store.connect(paths.db)
    traces = {t["trace_id"]: t for t in traces_json(db)}
    assert len(traces) == 5  # Claude's two, and three local runs (two here, one in the comparison with edits)
    assert sorted(t["origin"] for t in traces.values()) == ["claude", "claude", "local", "local", "local"]
    for item in (follow, diverge):
        local = traces[item["local"]["trace_id"]]
        assert local["origin"] == "local" and local["qualifies"] is False and local["status"] == "completed"
        assert traces[item["trace_id"]]["origin"] == "claude" and traces[item["trace_id"]]["qualifies"] is True
        cwd, = db_rows(paths, "SELECT cwd FROM sessions WHERE session_id = ?", [local["session_id"]])[0]
        assert "cc-capture-compare-" in cwd and not Path(cwd).exists()  # its worktree, removed
    assert qualifying_since(db, None, False) == 2  # the local traces never count toward training
    listed = ccd_in(compared["env"], "traces", "list").stdout
    assert listed.count("local") == 3
    db.conn.close()


def test_scores_of_the_pair_that_follows_and_the_pair_that_diverges(compared):
    follow, diverge = items_by_marker(compared["report"]).values()
    f = follow["scores"]
    assert (f["tool_sequence_similarity"], f["first_tool_agreement"], f["tool_set_overlap"]) == (1.0, 1.0, 1.0)
    assert f["argument_agreement"] == 1.0  # the worktree's paths read as the project's
    assert f["answer_similarity"] == 1.0 and f["clean_ending"] == 1.0 and f["behaviour_cosine"] > 0.95
    assert f["claude_steps"] == f["local_steps"] == 4
    assert follow["divergence"] is None and not follow["dpo_pair"]
    d = diverge["scores"]
    assert (d["tool_sequence_similarity"], d["first_tool_agreement"], d["tool_set_overlap"]) == (0.0, 0.0, 0.0)
    assert d["argument_agreement"] is None and d["clean_ending"] == 1.0 and d["answer_similarity"] < 0.3
    assert (d["claude_steps"], d["local_steps"]) == (3, 2)
    assert diverge["divergence"] == 0 and diverge["dpo_pair"]
    summary = compared["report"]["summary"]
    assert summary["items"] == 2 and summary["statuses"] == {"ok": 2} and summary["dpo_pairs"] == 1
    seq = summary["scores"]["tool_sequence_similarity"]
    assert (seq["mean"], seq["n"]) == (0.5, 2) and seq["interval"] == [0.0, 1.0]
    assert summary["scores"]["argument_agreement"]["n"] == 1


def test_nothing_outside_the_worktree_changed(compared):
    assert compared["after"] == compared["before"]  # after both comparisons, the one with edits too
    assert not list(Path(compared["project"], ".git", "worktrees").glob("*"))
    (item,) = compared["edits"]["items"]
    assert item["prompt"].startswith(FOLLOW) and item["local"]["tool_sequence"] == ["Read", "Edit", "Write", "Bash"]
    assert item["local"]["status"] == "max_turns" and item["scores"]["clean_ending"] == 0.0
    db = store.connect(compared["paths"].db)
    calls = {c["name"]: c for c in trace_json(db, item["local"]["trace_id"])["tool_calls"]}
    db.conn.close()
    assert calls["Edit"]["status"] == "ok"  # inside the worktree: accepted
    assert calls["Write"]["status"] != "ok" and calls["Bash"]["status"] != "ok"  # outside: refused
    assert not (compared["outside"] / "note.txt").exists() and not (compared["outside"] / "shell.txt").exists()
    # the daemon captured that replay (it ran during it) and found where it ran: the worktree, detached
    state, = db_rows(compared["paths"], "SELECT git_state FROM sessions WHERE session_id = ?",
                     [item["local"]["session_id"]])[0]
    assert state == "repo" and "ccd daemon stopped" in compared["paths"].daemon_log.read_text()


def test_stored_comparison_is_listed_and_shown_again(compared):
    env, report = compared["env"], compared["report"]
    latest, past = json.loads(ccd_in(env, "compare", "--list", "--json").stdout)  # the refused ones were not stored
    assert set(past) == readme.keys("compare --list")
    assert past["compare_id"] == report["compare_id"] and past["status"] == "done" and past["items"] == 2
    assert past["means"]["tool_sequence_similarity"] == 0.5 and past["dpo_pairs"] == 1 and past["change"] is None
    edits = compared["edits"]["summary"]["scores"]
    assert latest["model"] == "cc-capture:v1" and latest["items"] == 1
    assert latest["previous"] == {"compare_id": report["compare_id"], "model": "cc-capture:latest"}
    assert latest["change"]["tool_sequence_similarity"] == round(edits["tool_sequence_similarity"]["mean"] - 0.5, 4)
    again = json.loads(ccd_in(env, "compare", "--show", report["compare_id"], "--json").stdout)
    assert again["summary"] == report["summary"] and len(again["items"]) == 2
    table = ccd_in(env, "compare", "--list").stdout
    assert report["compare_id"] in table and "cc-capture:latest" in table
    shown = ccd_in(env, "compare", "--show", report["compare_id"]).stdout
    assert FOLLOW in shown and DIVERGE in shown and "step 1" in shown and "preference pair" in shown


def test_the_divergence_is_a_dpo_pair_and_local_traces_stay_out_of_sft(compared):
    pytest.importorskip("datasets", reason="building a dataset needs the training extra")
    from cc_capture.datasets.build import build

    paths, report = compared["paths"], compared["report"]
    db = store.connect(paths.db)
    dpo = build(db, paths.datasets, DatasetSettings(), SystemPromptChoice.COMPACT, dpo=True)
    rows = [json.loads(line) for split in ("train", "eval") for line in
            (dpo.path / f"{split}.jsonl").read_text().splitlines()]
    assert dpo.manifest.origins == {"self_correction": 1, "compare": 2}  # one from each comparison
    # both sessions were spent (one by each comparison): their pairs are trained on
    assert dpo.manifest.compare_pairs == {"train": 2, "eval": 0} and dpo.manifest.spent_sessions == 2
    (pair,) = [r for r in rows if r["origin"] == "compare" and r["compare_id"] == report["compare_id"]]
    diverge = items_by_marker(report)[DIVERGE]
    assert pair["compare_id"] == report["compare_id"] and pair["step"] == 0
    assert pair["trace_ids"] == [diverge["trace_id"], diverge["local"]["trace_id"]]
    assert [m["role"] for m in pair["prompt"]] == ["system", "user"] and DIVERGE in pair["prompt"][1]["content"]
    assert pair["chosen"][0]["tool_calls"][0]["function"] == {"name": "Glob", "arguments": '{"pattern":"*.py"}'}
    assert pair["rejected"][0]["tool_calls"][0]["function"] == {"name": "Grep", "arguments": '{"pattern":"TODO"}'}
    # the differences become training data: the pair is in the DPO set's train split
    assert pair in [json.loads(line) for line in (dpo.path / "train.jsonl").read_text().splitlines()]
    from datasets import load_from_disk

    hf = load_from_disk(str(dpo.path / "hf"))["train"]  # after the self-correction pair, its keys are kept
    assert {r["compare_id"] for r in hf if r["origin"] == "compare"} == {report["compare_id"],
                                                                         compared["edits"]["compare_id"]}
    sft = build(db, paths.datasets, DatasetSettings(), SystemPromptChoice.COMPACT)
    assert sft.manifest.traces == 2
    trace_ids = {json.loads(line)["trace_id"] for s in ("train", "eval")
                 for line in (sft.path / f"{s}.jsonl").read_text().splitlines()}
    assert trace_ids == {i["trace_id"] for i in report["items"]}
    # spent sessions are ordinary training sessions now: Claude's traces join SFT train, eval holds none
    assert sft.manifest.spent_sessions == 2 and sft.counts["eval"] == 0
    db.conn.close()


def test_a_session_a_comparison_made_a_pair_from_is_spent_for_evaluation(compared):
    pytest.importorskip("datasets", reason="building a dataset needs the training extra")
    from cc_capture.compare.candidates import pick

    report, paths = compared["report"], compared["paths"]
    follow, diverge = items_by_marker(report).values()
    (before, _), (after, _, stale) = compared["eval_before"], compared["eval_after"]
    assert {i.trace_id for i in before.items} == {follow["trace_id"], diverge["trace_id"]}
    # the diverging prompt made a pair: out of the eval set; the one that followed made none: still in
    assert {i.trace_id for i in after.items} == {follow["trace_id"]}
    assert after.hash != before.hash  # the gate scores the champion again, on the new set
    assert (stale.hash, stale.items) == (after.hash, after.items)  # also from a folder built before
    db = store.connect(paths.db)
    spent = {r[0]: r[1:] for r in db.execute("SELECT trace_id, compare_id, session_id FROM spent_sessions")}
    sessions = dict(db.execute("SELECT trace_id, session_id FROM traces"))
    assert spent == {diverge["trace_id"]: (report["compare_id"], sessions[diverge["trace_id"]]),
                     follow["trace_id"]: (compared["edits"]["compare_id"], sessions[follow["trace_id"]])}
    found, skipped = pick(db, DatasetSettings().eval_percent, 10)  # never replayed again
    assert found == [] and skipped == {"spent by an earlier comparison (its pair is training data)": 2}
    db.conn.close()
    built = ccd_in(compared["env"], "dataset", "build", "--dpo").stdout
    assert "`ccd compare`: 2 train, 0 eval preference pairs; 2 sessions spent for evaluation" in built


def test_no_ollama_or_no_model_is_said_before_anything_runs(compared):
    missing, down, no_claude = compared["refused"]
    assert "deploy one (`ccd deploy`) or name another with --model" in str(missing.value)
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert "Ollama is not running" in down.stderr and "[deploy] ollama_host" in down.stderr
    assert "npm install -g @anthropic-ai/claude-code" in str(no_claude.value)
    # none was stored: test_stored_comparison_is_listed_and_shown_again finds the two that ran only
