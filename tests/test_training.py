"""Datasets from captured traces, and real training on CPU: SFT, DPO and GRPO of a tiny Llama
built here (no model can be downloaded), through `ccd dataset build`, `ccd train` and `ccd runs`."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the training extra is not installed (pip install -e '.[train]')")

from cc_capture import reads, store  # noqa: E402
from cc_capture.datasets.build import split_of  # noqa: E402
from conftest import ccd, emit, ingest_all, wait_for  # noqa: E402
from support import ollama_go, readme  # noqa: E402

pytestmark = pytest.mark.training
# The first request of Claude Code 2.1.328 as `ccd local` starts it, recorded by `ccd calibrate`
# (test_calibrate.py checks it is still what the pinned CLI sends)
CLAUDE_CODE_REQUEST = Path(__file__).parent / "fixtures" / "claude_code_2.1.328_request.json"
LONG = "The change is done and verified. " * 12


def session(paths, sid, prompt, steps, answer):
    """A real captured session: hook payloads through the emitter and ingest (with a transcript)."""
    base = {"session_id": sid, "prompt_id": f"{sid}-p", "cwd": "/w"}
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt": prompt})
    for b, batch in enumerate(steps):
        calls = []
        for i, (name, inp, out, ok) in enumerate(batch):
            tid = f"{sid}-t{b}{i}"
            call = {**base, "tool_name": name, "tool_use_id": tid, "tool_input": inp}
            emit(paths, {**call, "hook_event_name": "PreToolUse"})
            if ok:
                emit(paths, {**call, "hook_event_name": "PostToolUse", "tool_response": {"stdout": out, "stderr": ""}})
            else:
                emit(paths, {**call, "hook_event_name": "PostToolUseFailure", "error": out})
            calls.append({"tool_name": name, "tool_input": inp, "tool_use_id": tid, "tool_response": out})
        emit(paths, {**base, "hook_event_name": "PostToolBatch", "tool_calls": calls})
    emit(paths, {**base, "hook_event_name": "Stop", "last_assistant_message": answer})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("train")
    old = os.environ.get("CC_CAPTURE_HOME")
    os.environ["CC_CAPTURE_HOME"] = str(home / "cch")
    from cc_capture.config import Paths

    paths = Paths(home / "cch").ensure()
    (paths.home / "config.toml").write_text("[datasets]\neval_percent = 30\n[train]\nlearning_rate = 0.005\n"
                                            "batch_size = 2\ngradient_accumulation_steps = 1\nsave_steps = 5\n"
                                            "max_length = 1024\ngrpo_num_generations = 2\n"
                                            "grpo_max_completion_length = 16\n"
                                            "[evaluate]\nmax_new_tokens = 24\nbootstrap_samples = 200\n")
    for k in range(8):
        session(paths, f"s{k}", f"List the Python files in package {k} and count them",
                [[("Bash", {"command": f"ls pkg{k}"}, "a.py\nb.py", True)],
                 [("Grep", {"pattern": "def ", "path": f"pkg{k}"}, "a.py:def f()", True),
                  ("Read", {"file_path": f"pkg{k}/a.py"}, "def f(): pass", True)]], f"There are 2 files. {LONG}")
    # a self-correction: a failed call, then a different one that works
    session(paths, "fix", "Run the unit tests of the parser",
            [[("Bash", {"command": "pytest tests/parser"}, "Exit code 4\nno such dir", False)],
             [("Bash", {"command": "pytest tests/test_parser.py"}, "5 passed", True)]], f"All 5 pass. {LONG}")
    session(paths, "dup", "List the Python files in package 0 and count them",  # same content as s0: a duplicate
            [[("Bash", {"command": "ls pkg0"}, "a.py\nb.py", True)],
             [("Grep", {"pattern": "def ", "path": "pkg0"}, "a.py:def f()", True),
              ("Read", {"file_path": "pkg0/a.py"}, "def f(): pass", True)]], f"There are 2 files. {LONG}")
    ingest_all(paths)
    db = store.connect(paths.db)
    with store.transaction(db) as conn:
        store.feedback_set(conn, "s1-p", "up", None)
        store.feedback_set(conn, "s2-p", "down", "wrong package")
    from cc_capture.config import GateSettings
    from cc_capture.signals.runner import compute_pending

    compute_pending(db, GateSettings())
    yield paths
    if old is None:
        os.environ.pop("CC_CAPTURE_HOME", None)
    else:
        os.environ["CC_CAPTURE_HOME"] = old



@pytest.fixture(scope="module")
def sft_dataset(world):
    return json.loads(ccd("dataset", "build", "--json").stdout)


def read_jsonl(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines()]


def test_sft_dataset_shape_splits_and_manifest(sft_dataset):
    path = Path(sft_dataset["path"])
    rows = read_jsonl(path / "train.jsonl") + read_jsonl(path / "eval.jsonl")
    m = sft_dataset["manifest"]
    assert set(sft_dataset) == readme.keys("dataset build") and set(m) == readme.keys("dataset build", "manifest")
    assert json.loads((path / "manifest.json").read_text()) == m
    assert sft_dataset["counts"] == m["counts"] and m["counts"]["train"] > 0 and m["counts"]["eval"] > 0
    assert m["duplicates_dropped"] == 1 and m["traces"] == 9  # s2 rated down: excluded
    assert m["extractor_version"] >= 1 and len(m["trace_ids_sha256"]) == 64 and m["tokens"]["max"] > 0
    train_sessions = {r["session_id"] for r in read_jsonl(path / "train.jsonl")}
    eval_sessions = {r["session_id"] for r in read_jsonl(path / "eval.jsonl")}
    assert not train_sessions & eval_sessions
    assert all(split_of(s, 30) == "eval" for s in eval_sessions)
    example = next(r for r in rows if r["trace_id"] == "s0-p" or r["trace_id"] == "dup-p")
    roles = [m["role"] for m in example["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "tool", "assistant"]
    parallel = example["messages"][4]
    assert [tc["function"]["name"] for tc in parallel["tool_calls"]] == ["Grep", "Read"]
    assert all(isinstance(tc["function"]["arguments"], str) for tc in parallel["tool_calls"])
    assert json.loads(parallel["tool_calls"][0]["function"]["arguments"]) == {"path": "pkg0", "pattern": "def "}
    tools = {t["function"]["name"]: t for t in json.loads(example["tools"])}
    assert set(tools) == {"Bash", "Grep", "Read"}
    assert tools["Grep"]["function"]["parameters"]["required"] == ["path", "pattern"]
    from datasets import load_from_disk

    hf = load_from_disk(str(path / "hf"))
    assert hf["train"].num_rows == m["counts"]["train"]
    assert oct(os.stat(path / "train.jsonl").st_mode & 0o777) == "0o600"


def test_long_traces_split_and_outputs_truncated(world):
    from cc_capture.config import DatasetSettings
    from cc_capture.datasets.conversation import conversations
    from cc_capture.datasets.inference import COMPACT_SYSTEM_PROMPT

    db = store.connect(world.db)
    t = reads.trace(db, "s3-p")
    t.tool_calls[0].output = {"stdout": "x" * 50_000}
    parts = conversations(t, max_tool_output_tokens=100, max_tokens=300, system_prompt=COMPACT_SYSTEM_PROMPT)
    assert len(parts) == 2  # split at a step boundary, not cut at the end
    assert parts[0][-1]["role"] == "tool" and parts[1][-1]["content"].startswith("There are 2 files")
    assert "[truncated: 49600 more characters]" in parts[0][3]["content"]
    assert parts[1][2]["role"] == "system" and "Bash" in parts[1][2]["content"]
    assert DatasetSettings().max_tool_output_tokens == 1024


def test_dpo_pairs_with_origins(world):
    data = json.loads(ccd("dataset", "build", "--dpo", "--json").stdout)
    rows = read_jsonl(Path(data["path"]) / "train.jsonl") + read_jsonl(Path(data["path"]) / "eval.jsonl")
    origins = {r["origin"] for r in rows}
    assert origins == {"self_correction", "rating"}
    fix = next(r for r in rows if r["origin"] == "self_correction")
    assert "tests/test_parser.py" in fix["chosen"][0]["tool_calls"][0]["function"]["arguments"]
    assert "tests/parser" in fix["rejected"][0]["tool_calls"][0]["function"]["arguments"]
    rating = next(r for r in rows if r["origin"] == "rating")
    assert rating["trace_ids"] == ["s1-p", "s2-p"]
    assert data["manifest"]["origins"] == {"self_correction": 1, "rating": 1}


def test_synthetic_traces_only_when_asked(world):
    db = store.connect(world.db)
    db.execute("UPDATE traces SET synthetic = 1 WHERE trace_id = 's4-p'")
    try:
        without = json.loads(ccd("dataset", "build", "--json").stdout)["manifest"]["traces"]
        with_ = json.loads(ccd("dataset", "build", "--include-synthetic", "--json").stdout)["manifest"]["traces"]
    finally:
        db.execute("UPDATE traces SET synthetic = 0 WHERE trace_id = 's4-p'")
    assert with_ == without + 1


@pytest.fixture(scope="module")
def tiny(world, sft_dataset, tmp_path_factory):
    from cc_capture.train.tiny import make_tiny_model

    texts = [l for l in (Path(sft_dataset["path"]) / "train.jsonl").read_text().splitlines()] * 5
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny", texts)


@pytest.fixture(scope="module")
def sft_run(world, sft_dataset, tiny):
    out = ccd("train", "--phase", "sft", "--base-model", str(tiny), "--max-steps", "30",
              "--dataset", sft_dataset["path"], "--json")
    return json.loads(out.stdout)


def test_sft_trains_and_loss_falls(sft_run):
    assert sft_run["status"] == "completed" and sft_run["phase"] == "sft"
    assert sft_run["backend"] == "transformers+cpu"
    m = sft_run["metrics"]
    assert m["steps"] == 30 and m["last_loss"] < m["first_loss"]
    assert m["tokens_per_s"] > 0 and m["runtime_s"] > 0
    adapter = Path(sft_run["artifacts"]["adapter_dir"])
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 16


def test_eval_registers_the_run_scores_it_and_gates_it_against_the_base(world, sft_run):
    from cc_capture.evaluate import registry

    out = json.loads(ccd("eval", sft_run["run_id"], "--max-items", "6", "--json").stdout)
    model, against, decision = out["model"], out["against"], out["decision"]
    assert model["runs"] == [sft_run["run_id"]] and len(model["sha256"]) == 64
    assert 0 < out["eval_set"]["items"] <= 6 and out["counts"]["valid_call_rate"] == out["eval_set"]["items"]
    assert all(v is None or 0 <= v <= 1 for v in out["metrics"].values())
    assert out["timings"]["generate_s"] > 0 and out["timings"]["items_per_s"] > 0
    db = store.connect(world.db)
    base = registry.get(db, against["version"])
    assert base.is_base and base.base_model == json.loads(ccd("runs", "show", sft_run["run_id"], "--json").stdout)[
        "config"]["base_model"]
    champion = registry.champion(db).version
    assert champion == (model["version"] if decision["promote"] else against["version"]) and decision["applied"]
    assert json.loads(ccd("status", "--json").stdout)["champion"]["version"] == champion
    again = json.loads(ccd("eval", sft_run["run_id"], "--max-items", "6", "--json").stdout)
    assert again["metrics"] == out["metrics"] and again["timings"] == out["timings"]  # cached, not generated again
    assert (again["decision"] is None) == decision["promote"]  # a champion is not compared with itself


def test_runs_list_and_show(sft_run):
    listed = json.loads(ccd("runs", "list", "--json").stdout)
    assert sft_run["run_id"] in [r["run_id"] for r in listed]
    assert all(set(r) == readme.keys("runs show ID") for r in listed)
    shown = json.loads(ccd("runs", "show", sft_run["run_id"], "--json").stdout)
    assert set(shown["dataset_manifest"]) == readme.keys("runs show ID", "dataset_manifest")
    assert shown["config"]["lora_r"] == 16 and shown["config"]["max_steps"] == 30
    assert shown["dataset_manifest"]["kind"] == "sft" and shown["status"] == "completed"
    assert Path(shown["log_path"]).exists()


def test_interrupted_run_resumes_from_its_checkpoint(world, sft_dataset, tiny):
    p = subprocess.Popen([sys.executable, "-m", "cc_capture", "train", "--phase", "sft", "--base-model", str(tiny),
                          "--max-steps", "400", "--dataset", sft_dataset["path"], "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    runs_dir = world.home / "runs"
    before = {d.name for d in runs_dir.iterdir()} if runs_dir.exists() else set()
    checkpoint = wait_for(lambda: [c for c in runs_dir.glob("*/checkpoints/checkpoint-*")
                                   if c.parent.parent.name not in before and int(c.name.split("-")[1]) >= 10
                                   and (c / "trainer_state.json").exists()],
                          timeout=300, message="a checkpoint of the new run")
    p.send_signal(signal.SIGINT)  # Ctrl-C: ccd stops the worker, which records the run as interrupted
    out, _ = p.communicate(timeout=120)
    run = json.loads(out)
    assert run["status"] == "interrupted"
    run_id = run["run_id"]
    assert checkpoint[0].parent.parent.name == run_id
    db = store.connect(world.db)
    db.execute("UPDATE runs SET config = json_set(config, '$.max_steps', 15) WHERE run_id = ?", [run_id])
    resumed = json.loads(ccd("train", "--resume", run_id, "--json").stdout)
    assert resumed["status"] == "completed" and resumed["metrics"]["steps"] == 15
    events = [json.loads(l) for l in (runs_dir / run_id / "progress.jsonl").read_text().splitlines()]
    starts = [i for i, e in enumerate(events) if e.get("event") == "start"]
    assert len(starts) == 2 and events[starts[0]]["resume_from"] is None
    resumed_from = events[starts[1]]["resume_from"]
    assert resumed_from and int(resumed_from.rsplit("-", 1)[1]) >= 10
    after = [e["step"] for e in events[starts[1]:] if "loss" in e]
    assert after[0] == int(resumed_from.rsplit("-", 1)[1]) + 1 and after[-1] == 15  # went on, not from step 1


def test_dpo_trains_on_the_merged_sft_model(world, sft_run):
    """DPO merges the SFT run it is given, not whichever finished last: a later completed SFT run
    (whose adapter is gone, so merging it would fail) is passed over."""
    db = store.connect(world.db)
    later = "99991231-000000-later"
    db.execute("INSERT INTO runs (run_id, phase, status, created_at, config, artifacts) "
               "SELECT ?, phase, status, created_at + 1e6, config, json_set(artifacts, '$.adapter_dir', ?) "
               "FROM runs WHERE run_id = ?", [later, str(world.home / "gone"), sft_run["run_id"]])
    try:
        out = json.loads(ccd("train", "--phase", "dpo", "--from-run", sft_run["run_id"], "--max-steps", "4",
                             "--json").stdout)
    finally:
        db.execute("DELETE FROM runs WHERE run_id = ?", [later])
    assert out["status"] == "completed", out
    assert out["artifacts"]["from_run"] == sft_run["run_id"]
    assert Path(out["artifacts"]["base_model_dir"]).name == "merged-sft"
    assert (Path(out["artifacts"]["adapter_dir"]) / "adapter_config.json").exists()
    assert out["metrics"]["steps"] == 4 and out["metrics"]["train_loss"] is not None


def test_grpo_trains_with_the_behavioural_reward(world, sft_run, sft_dataset):
    out = json.loads(ccd("train", "--phase", "grpo", "--max-steps", "2", "--dataset", sft_dataset["path"],
                         "--json").stdout)
    assert out["status"] == "completed", out
    assert out["metrics"]["steps"] == 2
    assert any(k.startswith("reward") for k in out["metrics"]), out["metrics"]


def test_train_errors_are_clear(world, sft_dataset):
    bad = ccd("train", "--phase", "ppo", check=False)
    assert bad.returncode == 2 and "--phase must be sft, dpo or grpo" in bad.stderr
    wrong = ccd("train", "--phase", "dpo", "--dataset", sft_dataset["path"], check=False)
    assert wrong.returncode == 1 and "needs a dpo dataset" in wrong.stderr
    not_sft = ccd("train", "--phase", "sft", "--from-run", "x", check=False)
    assert not_sft.returncode == 1 and "--from-run goes with --phase dpo or grpo" in not_sft.stderr
    unknown = ccd("train", "--phase", "dpo", "--from-run", "no-such-run", check=False)
    assert unknown.returncode == 1 and "no run matches 'no-such-run'" in unknown.stderr


def test_training_template_renders_several_calls_and_masks_assistant_output(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    conversation = [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Check it."},
        {"role": "assistant", "content": "Two checks.", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls"}'}},
            {"id": "b", "type": "function", "function": {"name": "Read", "arguments": {"file_path": "x.py"}}}]},
        {"role": "tool", "content": "x.py", "tool_call_id": "a"}, {"role": "tool", "content": "pass", "tool_call_id": "b"},
        {"role": "assistant", "content": "Fine."}]
    text = tok.apply_chat_template(conversation, tokenize=False)
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nCheck it.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nTwo checks.\n<|python_tag|>"
        '{"name": "Bash", "parameters": {"command":"ls"}}\n{"name": "Read", "parameters": {"file_path": "x.py"}}<|eom_id|>'
        "<|start_header_id|>ipython<|end_header_id|>\n\nx.py<|eot_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\npass<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nFine.<|eot_id|>")
    out = tok.apply_chat_template(conversation, return_dict=True, return_assistant_tokens_mask=True)
    trained = tok.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    assert trained == ('Two checks.\n<|python_tag|>{"name": "Bash", "parameters": {"command":"ls"}}\n'
                       '{"name": "Read", "parameters": {"file_path": "x.py"}}<|eom_id|>Fine.<|eot_id|>')


def test_ollama_template_renders_what_training_saw(tiny, sft_dataset, tmp_path):
    """The deployment (Go) template and the training (Jinja) template agree, token for token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    rows = read_jsonl(Path(sft_dataset["path"]) / "train.jsonl")[:2]
    tricky = [{"role": "system", "content": "Be careful."}, {"role": "user", "content": "Compare a < b & c > d"},
              {"role": "assistant", "content": "", "tool_calls": [
                  {"id": "x", "type": "function", "function": {
                      "name": "Bash", "arguments": json.dumps({"command": "test 1 < 2 && echo é > f"})}}]},
              {"role": "tool", "content": "ok", "tool_call_id": "x"}]
    from cc_capture.datasets.conversation import arguments_json

    tricky[2]["tool_calls"][0]["function"]["arguments"] = arguments_json({"command": "test 1 < 2 && echo é > f"})
    cases = [(r["messages"], json.loads(r["tools"])) for r in rows] + [(tricky, json.loads(rows[0]["tools"]))]
    # Claude Code's own system prompt and tool definitions, as `ccd calibrate` recorded them (and as a
    # calibrated dataset carries them): long descriptions, every JSON-schema type, no `required` on one
    from cc_capture.datasets.inference import function_tools, system_text

    recorded = json.loads(CLAUDE_CODE_REQUEST.read_text())
    cases.append(([{"role": "system", "content": system_text(recorded["system"])}] + rows[0]["messages"][1:],
                  function_tools(recorded["tools"])))
    for conversation, tools in cases:
        ends_with_answer = conversation[-1]["role"] == "assistant"
        jinja = tok.apply_chat_template(conversation, tools=tools, tokenize=False,
                                        add_generation_prompt=not ends_with_answer)
        assert jinja.startswith(tok.bos_token)
        assert ollama_go.render(conversation, tools, tmp_path) == jinja[len(tok.bos_token):]


def test_calibration_counts_tokens_with_the_base_models_tokenizer(tiny):
    """`ccd calibrate` counts with the training base model's tokenizer (in a subprocess) when it is on
    this machine, the tools also as the chat template renders them; otherwise it estimates and says why."""
    from cc_capture.calibrate.run import count_tokens

    recorded = json.loads(CLAUDE_CODE_REQUEST.read_text())
    from cc_capture.datasets.inference import system_text

    views = [(system_text(recorded["system"]), recorded["tools"])]
    (counted,) = count_tokens(views, str(tiny))
    assert counted.counter == f"tokenizer:{tiny}" and counted.note is None
    assert counted.system > 0 and counted.tools == sum(counted.per_tool.values())
    assert set(counted.per_tool) == {t["name"] for t in recorded["tools"]}
    assert 0 < counted.rendered_tools < counted.tools  # the template renders less than the JSON
    (estimated,) = count_tokens(views, str(tiny / "absent"))
    assert estimated.counter == "estimate:characters/4" and estimated.rendered_tools is None
    assert "neither a folder nor in the Hugging Face cache" in estimated.note


def test_old_trl_on_cpu_is_refused_with_a_clear_reason():
    from cc_capture.train.worker import check_trl

    with pytest.raises(RuntimeError, match=r"trl 1\.15\.0 cannot train on the CPU.*--train"):
        check_trl("1.15.0", cuda=False)
    check_trl("1.15.0", cuda=True)  # unsloth's pin, on CUDA: fine
    check_trl("1.16.0", cuda=False)


def test_divergence_pairs_from_a_trained_model(world, sft_run):
    out = json.loads(ccd("dataset", "build", "--dpo", "--divergences-from", sft_run["run_id"], "--max-prompts", "6",
                         "--json").stdout)
    rows = read_jsonl(Path(out["path"]) / "train.jsonl") + read_jsonl(Path(out["path"]) / "eval.jsonl")
    divergent = [r for r in rows if r["origin"] == "divergence"]
    assert divergent and out["manifest"]["origins"]["divergence"] == len(divergent)
    pair = divergent[0]
    assert pair["run_id"] == sft_run["run_id"] and 0 <= pair["score"] < 0.5
    assert pair["chosen"][0]["tool_calls"]  # Claude's step: it called tools
    assert pair["chosen"] != pair["rejected"] and pair["prompt"][-1]["role"] in ("user", "tool")
    bad = ccd("dataset", "build", "--divergences-from", sft_run["run_id"], check=False)
    assert bad.returncode == 2 and "goes with --dpo" in bad.stderr


def test_gate_scores_the_champion_again_when_a_spent_session_changes_the_eval_set(world, sft_run):
    """A comparison spends a session (its pair is trained on from then): the eval set leaves it out,
    its hash changes, and the gate scores the champion on the new set, not from the cache of the old.
    (Spent here directly: a real comparison needs Claude Code, test_compare.py runs one.)"""
    from cc_capture.evaluate import items as items_mod
    from cc_capture.evaluate import registry

    first = json.loads(ccd("eval", sft_run["run_id"], "--max-items", "6", "--json").stdout)
    db = store.connect(world.db)
    champion = registry.champion(db)
    # the model that is not the champion challenges it (a champion is not compared with itself)
    challenger = first["against"]["version"] if champion.version == first["model"]["version"] else \
        first["model"]["version"]
    old = items_mod.load(world.evalsets, first["eval_set"]["hash"])
    spent = old.items[0]
    with store.transaction(db) as conn:
        store.spend_session(conn, spent.session_id, "cmp-test", spent.trace_id)
    try:
        again = json.loads(ccd("eval", f"v{challenger}", "--max-items", "6", "--json").stdout)
        new = items_mod.load(world.evalsets, again["eval_set"]["hash"])
        assert again["eval_set"]["hash"] != old.hash and spent.session_id not in {i.session_id for i in new.items}
        assert again["against"]["version"] == champion.version and again["decision"]["applied"]
        scored_on = {r[0] for r in db.execute("SELECT eval_set_hash FROM evaluations WHERE model_sha256 = ?",
                                              [champion.sha256])}
        assert {old.hash, new.hash} <= scored_on  # scored again on the new set
        decided = db.execute("SELECT figures FROM model_events WHERE version = ? AND figures IS NOT NULL "
                             "ORDER BY id DESC LIMIT 1", [challenger]).fetchone()[0]
        assert json.loads(decided)["eval_set_hash"] == new.hash
    finally:
        with store.transaction(db) as conn:
            conn.execute("DELETE FROM spent_sessions")
        db.conn.close()


def _pipeline(paths) -> dict | None:
    """The latest pipeline's record, as another process reads it."""
    from conftest import db_rows

    rows = db_rows(paths, "SELECT pipeline_id, status, steps, state FROM pipelines ORDER BY started_at DESC LIMIT 1")
    if not rows:
        return None
    pipeline_id, status, steps, state = rows[0]
    return {"pipeline_id": pipeline_id, "status": status, "steps": {s["name"]: s for s in json.loads(steps)},
            "state": json.loads(state)}


def _checkpoints(paths, run_id) -> list[int]:
    """The steps of a run's checkpoints written whole."""
    from cc_capture.train.runs import RunDir

    return [int(c.name.split("-")[1]) for c in RunDir.of(paths, run_id).complete_checkpoints()]


def test_a_checkpoint_cut_short_is_passed_over(tmp_path):
    """Ctrl-C or kill -9 while the Trainer writes trainer_state.json (last) leaves it empty or cut
    short; resuming from that checkpoint would fail, so the one before it is resumed from."""
    from cc_capture.train.runs import RunDir
    from cc_capture.train.worker import _last_checkpoint

    run_dir = RunDir(tmp_path)
    for step, state in ((5, '{"global_step": 5}'), (10, '{"global_step": 10}'), (15, ""), (20, '{"global_')):
        (run_dir.checkpoints / f"checkpoint-{step}").mkdir(parents=True)
        (run_dir.checkpoints / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (run_dir.checkpoints / "checkpoint-25").mkdir()  # cut short before trainer_state.json
    assert [c.name for c in run_dir.complete_checkpoints()] == ["checkpoint-5", "checkpoint-10"]
    assert _last_checkpoint(run_dir).endswith("checkpoint-10")


def _worker_starts(paths, run_id) -> list[dict]:
    """One line per worker that began training the run: its pid and the checkpoint it resumed from."""
    progress = paths.home / "runs" / run_id / "progress.jsonl"
    lines = progress.read_text().splitlines() if progress.exists() else []
    return [e for e in map(json.loads, lines) if e.get("event") == "start"]


def _step_of(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0


@pytest.mark.timeout(900)  # three pipeline processes, each starting torch workers: slow on a loaded machine
def test_the_pipeline_resumes_after_ctrl_c_and_kill_9_from_its_last_finished_step(world, tiny, tmp_path):
    """`ccd pipeline run` as a user runs it: Ctrl-C during its SFT step, then kill -9 during the
    resumed SFT step. Each next run takes up the same pipeline at its unfinished step (the finished
    dataset step keeps its record and is not run again) and the same training run from its last
    checkpoint; the worker of the killed pipeline stops by itself; a second start meanwhile is told
    which pipeline holds the lock. The champion is already deployed (to the Ollama double) and
    `[evaluate] min_score = 1` makes the gate reject, so nothing is exported."""
    from cc_capture.config import DeploySettings
    from cc_capture.deploy.deployer import deploy
    from cc_capture.processes import alive
    from cc_capture.pipeline.candidates import ensure_champion
    from conftest import db_rows
    from support.ollama_double import OllamaDouble
    from test_deploy import make_artifact

    db = store.connect(world.db)
    champion = ensure_champion(db, str(tiny))
    with OllamaDouble() as double:
        deploy(db, DeploySettings(ollama_host=double.url), make_artifact(tmp_path, champion.version))
    runs_before = {r[0] for r in db_rows(world, "SELECT run_id FROM runs")}
    earlier = _pipeline(world)
    config = world.home / "config.toml"
    settings = config.read_text()
    config.write_text(settings.replace("[train]\n", f'[train]\nbase_model = "{tiny}"\nmax_steps = 400\n')
                      .replace("[evaluate]\n", "[evaluate]\nmax_items = 6\nmin_score = 1.0\n"))
    pipeline_run = [sys.executable, "-m", "cc_capture", "pipeline", "run", "--json"]
    try:
        # 1. Ctrl-C while SFT trains (its worker held still, so the step cannot end meanwhile)
        first = subprocess.Popen(pipeline_run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = wait_for(lambda: (p := _pipeline(world)) and p != earlier and "sft_run" in p["state"] and p,
                           timeout=300, message="the pipeline's SFT run")
        run_id = started["state"]["sft_run"]
        wait_for(lambda: _checkpoints(world, run_id), timeout=300, message="a checkpoint of the SFT run")
        worker = _worker_starts(world, run_id)[0]
        assert worker["resume_from"] is None
        os.kill(worker["pid"], signal.SIGSTOP)
        busy = ccd("pipeline", "run", "--json", check=False)
        assert busy.returncode == 1 and f"pipeline {started['pipeline_id']} (pid {first.pid}) is running" in busy.stderr
        first.send_signal(signal.SIGINT)
        os.kill(worker["pid"], signal.SIGCONT)
        _, said = first.communicate(timeout=120)
        assert first.returncode == 130 and "the next `ccd pipeline run` resumes it" in said
        interrupted = _pipeline(world)
        assert interrupted["pipeline_id"] == started["pipeline_id"] and interrupted["status"] == "interrupted"
        assert interrupted["steps"]["dataset"]["status"] == "done"
        assert interrupted["steps"]["sft"]["status"] == "interrupted"
        assert db_rows(world, "SELECT status FROM runs WHERE run_id = ?", [run_id]) == [("interrupted",)]

        # 2. the next run resumes SFT from its checkpoint; kill -9 it there
        second = subprocess.Popen(pipeline_run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        resumed = wait_for(lambda: (s := _worker_starts(world, run_id)) and len(s) == 2 and s[1], timeout=300,
                           message="the SFT run resumed")
        assert _step_of(resumed["resume_from"]) >= 1, resumed
        wait_for(lambda: _checkpoints(world, run_id)[-1] > _step_of(resumed["resume_from"]), timeout=300,
                 message="a checkpoint after the resumed one")
        os.kill(resumed["pid"], signal.SIGSTOP)
        second.kill()
        second.communicate(timeout=60)
        os.kill(resumed["pid"], signal.SIGCONT)
        wait_for(lambda: not alive(resumed["pid"]), timeout=60, message="the killed pipeline's worker to stop")
        assert db_rows(world, "SELECT status FROM runs WHERE run_id = ?", [run_id]) == [("interrupted",)]
        killed = _pipeline(world)
        assert killed["status"] == "running" and killed["steps"]["sft"]["status"] == "running"  # it never knew
        last = _checkpoints(world, run_id)[-1]
        with store.transaction(db) as conn:  # end the run soon after its last checkpoint
            conn.execute("UPDATE runs SET config = json_set(config, '$.max_steps', ?) WHERE run_id = ?",
                         [last + 2, run_id])

        # 3. the next run finishes the same pipeline and the same run
        done = json.loads(ccd("pipeline", "run", "--json").stdout)
    finally:
        config.write_text(settings)
    steps = {s["name"]: s for s in done["steps"]}
    assert done["pipeline_id"] == started["pipeline_id"] and done["outcome"] == "rejected"
    assert list(steps) == ["dataset", "sft", "dpo", "evaluate", "gate", "export", "deploy"]
    assert steps["dataset"] == interrupted["steps"]["dataset"]  # its record (and timings) from the first run
    assert steps["sft"]["status"] == "done" and steps["sft"]["detail"] == f"run {run_id}"
    assert {r[0] for r in db_rows(world, "SELECT run_id FROM runs")} - runs_before == {run_id}  # one run in all
    starts = _worker_starts(world, run_id)
    assert len(starts) == 3 and starts[2]["resume_from"].endswith(f"checkpoint-{last}")
    events = [json.loads(l) for l in (world.home / "runs" / run_id / "progress.jsonl").read_text().splitlines()]
    after = [e["step"] for e in events[events.index(starts[2]):] if "loss" in e]
    assert after == [last + 1, last + 2]  # went on from the checkpoint, not from step 1
    assert "below min_score" in steps["gate"]["detail"]
    assert steps["export"]["status"] == steps["deploy"]["status"] == "skipped"
