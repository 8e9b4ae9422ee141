"""The whole learning loop, end to end, with the real parts (issue 12, item 5).

The daemon runs with `window = "always"`, `allow_cpu = true` and small thresholds; the base model
is a tiny Llama made here (test_learning's construction, 64 wide: a short full fine-tune on the training
text without the chat template's special tokens, so it knows the words but never ends a turn);
Ollama is the test double (tests/support/ollama_double.py). Bootstrap traces over one project
train; real Claude Code sessions (the pinned CLI, the hooks installed as `ccd hooks install` does,
the scripted Messages API acting out workflow traces over a second project) are held out (their
session ids fall in the eval split), so every eval item is a real captured session. After the
sessions no command is typed: the daemon decides, and its pipeline builds the dataset, trains,
evaluates, promotes, exports (llama.cpp), deploys; `ccd status --json` shows the version deployed.
A second cycle, after more sessions, trains a challenger for two steps only (its `[train]
max_steps` changed in config.toml, which each pipeline process reads): the gate rejects it and
the deployed model stays. Every wait is for a recorded condition, never for a time.
"""

import json
import random
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the training extra is not installed (pip install -e '.[train]')")

from cc_capture import daemon, store  # noqa: E402
from cc_capture.config import Paths  # noqa: E402
from cc_capture.datasets.bootstrap import generate  # noqa: E402
from cc_capture.datasets.build import split_of  # noqa: E402
from cc_capture.export import toolchain  # noqa: E402
from conftest import wait_for  # noqa: E402
from support.claude import claude_env, ensure_claude, run_claude  # noqa: E402
from support.ollama_double import OllamaDouble  # noqa: E402
from support.scripted_api import Scenario, ScriptedAPI, text, tool  # noqa: E402
from test_learning import make_project  # noqa: E402

pytestmark = [pytest.mark.claude, pytest.mark.training, pytest.mark.export, pytest.mark.loop, pytest.mark.timeout(1800)]

SYNTHETIC = 60  # bootstrap traces (train)
FIRST_SESSIONS = 6  # real Claude Code sessions before the first pipeline (held out)
MORE_SESSIONS = 3  # and before the second
EVAL_PERCENT = 30


def ccd(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, p.stderr
    return p


SESSION_IDS = random.Random(12)  # the same ids every run: the eval items sampled from them stay the same


def session_id_in(split: str) -> str:
    """A session id the dataset puts in `split` (the split is a hash of the id), drawn from a seeded
    generator so that every run evaluates on the same items."""
    while True:
        candidate = str(uuid.UUID(int=SESSION_IDS.getrandbits(128), version=4))
        if split_of(candidate, EVAL_PERCENT) == split:
            return candidate


def act_out(trace) -> list[list[dict]]:
    """A workflow trace as the scripted model's turns: each step's reasoning and calls, then the answer."""
    turns = [[text(reasoning)] + [tool(c.name, **c.input) for c in calls] for reasoning, calls in trace.steps]
    return turns + [[text(trace.answer)]]


def make_base(paths: Paths, out: Path) -> Path:
    """test_learning's base: a tiny Llama whose tokenizer and short full fine-tune come from the
    training text with the special tokens taken out (words and JSON shapes, no turn structure)."""
    from transformers import AutoTokenizer

    from cc_capture.train.tiny import make_tiny_model, pretrain

    built = json.loads(ccd("dataset", "build", "--include-synthetic", "--json").stdout)
    rows = [json.loads(line) for line in (Path(built["path"]) / "train.jsonl").read_text().splitlines()]
    folder = make_tiny_model(out, [json.dumps(r) for r in rows], vocab_size=2048)
    tok = AutoTokenizer.from_pretrained(folder)
    texts = [re.sub(r"<\|[a-z_]+\|>", "", tok.apply_chat_template(r["messages"], tools=json.loads(r["tools"]),
                                                                  tokenize=False)) for r in rows]
    return pretrain(folder, texts, steps=150)


CONFIG = """
[datasets]
eval_percent = {eval_percent}
max_tool_output_tokens = 24
[train]
base_model = "{base}"
learning_rate = 0.01
batch_size = 4
gradient_accumulation_steps = 1
save_steps = 20
max_length = 768
max_steps = {max_steps}
[evaluate]
max_items = 24
max_new_tokens = 96
batch_size = 16
bootstrap_samples = 200
[deploy]
ollama_host = "{ollama}"
quantization = "f16"
[learning]
window = "always"
allow_cpu = true
allow_battery = true
include_synthetic = true
min_first_traces = {first}
min_new_traces = {more}
min_interval_h = 0
idle_min = 0
min_free_disk_gb = 0
disk_per_base_model = 0
retry_after_h = 0
check_interval_min = 0.02
"""


def status():
    return json.loads(ccd("status", "--json").stdout)


def pipelines(paths):
    db = store.connect(paths.db)
    try:
        return [dict(r) for r in db.query("SELECT * FROM pipelines ORDER BY started_at")]
    finally:
        db.conn.close()


def ended(paths, n):
    """The first n pipelines have ended (`finished`, whatever their outcome)."""
    found = pipelines(paths)
    return len(found) >= n and all(p["status"] == "finished" for p in found[:n]) and found


def test_sessions_become_a_deployed_model_and_a_worse_challenger_is_rejected(tmp_path, monkeypatch):
    if toolchain.missing():
        pytest.fail("the export toolchain is missing (tests/run.sh installs it): " + "; ".join(toolchain.missing()))
    claude_bin = ensure_claude()
    home = tmp_path / "home"
    cc_home = tmp_path / "cch"
    monkeypatch.setenv("CC_CAPTURE_HOME", str(cc_home))
    paths = Paths(cc_home).ensure()
    ccd("hooks", "install", "--settings", str(home / ".claude" / "settings.json"))
    ccd("bootstrap", "--traces", str(SYNTHETIC), "--project", str(make_project(home / "plant-a")), "--seed", "1")
    base = make_base(paths, tmp_path / "tiny")
    project = make_project(home / "plant-b")  # the sessions work in another folder: no eval item repeats a train one
    workflows = generate(project, FIRST_SESSIONS + MORE_SESSIONS, seed=7)

    def sessions(traces, split):
        for trace in traces:
            with ScriptedAPI([Scenario(trace.prompt, act_out(trace))]) as api:
                r = run_claude(claude_bin, claude_env(home, cc_home, api.url), project, trace.prompt,
                               "--allowedTools", "Bash,Read,Glob,Grep", "--session-id", session_id_in(split))
            assert r.returncode == 0 and not api.unmatched, (r.stderr, api.unmatched)

    def runs_recorded():
        return [d for d in json.loads(ccd("schedule", "--limit", "2000", "--json").stdout) if d["decision"] == "run"]

    def qualifying(n):
        db = store.connect(paths.db)
        try:
            return db.execute("SELECT count(*) FROM signals g JOIN traces t USING (trace_id) WHERE g.qualifies = 1 "
                              "AND t.synthetic = 0").fetchone()[0] >= n
        finally:
            db.conn.close()

    with OllamaDouble() as ollama:
        def configure(max_steps):
            (cc_home / "config.toml").write_text(CONFIG.format(
                eval_percent=EVAL_PERCENT, base=base, max_steps=max_steps, ollama=ollama.url,
                first=SYNTHETIC + FIRST_SESSIONS, more=MORE_SESSIONS))

        configure(max_steps=40)
        daemon.start(paths)
        try:
            sessions(workflows[:FIRST_SESSIONS], "eval")  # held out: every eval item is a real session
            # no command from here: the daemon runs the pipeline once all the sessions qualify
            wait_for(lambda: qualifying(FIRST_SESSIONS), timeout=120, message="every session captured and qualifying")
            (first,) = wait_for(lambda: ended(paths, 1), timeout=900, interval=1, message="the first pipeline's end")
            steps = {s["name"]: (s["status"], s["detail"]) for s in json.loads(first["steps"])}
            assert first["outcome"] == "promoted", steps
            assert [s for s, _ in steps.values()] == ["done", "done", "skipped", "done", "done", "done", "done"], steps
            deployed = status()["deployed"]
            assert deployed["version"] == first["model_version"] and deployed["alias"] == "cc-capture:latest"
            assert ollama.models["cc-capture:latest"].model_digest == ollama.models[deployed["tag"]].model_digest
            learning = status()["learning"]["last_pipeline"]
            assert learning == {"pipeline_id": first["pipeline_id"], "outcome": "promoted",
                                "ended_at": learning["ended_at"], "model_version": first["model_version"]}

            configure(max_steps=2)  # the next pipeline process reads it: a challenger trained two steps
            sessions(workflows[FIRST_SESSIONS:], "train")  # the eval set stays: the champion's scores are reused
            second = wait_for(lambda: ended(paths, 2), timeout=900, interval=1,
                              message="the second pipeline's end")[1]
            started = wait_for(lambda: (r := runs_recorded()) and all(d["ended_at"] for d in r) and r, timeout=120,
                               message="the daemon's record of both runs' ends")
        finally:
            daemon.stop(paths)
        steps = {s["name"]: (s["status"], s["detail"]) for s in json.loads(second["steps"])}
        for p in (first, second):  # the figures README quotes (shown with -s)
            print(json.dumps({s["name"]: [s["started_at"], s["ended_at"], s["detail"]] for s in json.loads(p["steps"])}))
        assert second["outcome"] == "rejected", steps
        assert "not higher than the champion" in steps["gate"][1] or "drops by" in steps["gate"][1], steps
        assert steps["deploy"][0] == "skipped"
        now = status()
        assert now["deployed"]["version"] == first["model_version"] and now["champion"]["version"] == first["model_version"]
        assert ollama.models["cc-capture:latest"].model_digest == ollama.models[deployed["tag"]].model_digest
        assert [d["exit_code"] for d in started] == [0, 0], "two runs, each started by the daemon, each exiting 0"
