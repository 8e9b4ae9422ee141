"""Evaluation measures learning, on CPU, with a tiny Llama made here (issue 10, item 7).

Sessions made from the bootstrap workflow templates (which tool comes next is learnable from the
prompt and the steps so far) are captured through the real hook emitter and ingest, so they are
ordinary captured traces, split by session. The test's base model is a tiny random Llama given a
short full fine-tune on the train split rendered by the chat template with its special tokens
taken out: it knows the words and the JSON shapes, but not the turn structure, so it never ends a
turn (valid_call_rate near 0). LoRA SFT through `ccd train` must then raise valid_call_rate and
tool_accuracy on the held-out items by a real margin (tool_accuracy over always guessing the train
split's most frequent first tool, not only over the base: all 5 seeds tried beat it, 4 of them by
0.15 with their intervals above it, README), and
`ccd eval` must promote it over the base; a far shorter fine-tune is rejected with its reasons; a
model that fails to evaluate changes nothing; a second `ccd pipeline run` is told which pipeline
holds the lock.
"""

import fcntl
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the training extra is not installed (pip install -e '.[train]')")

from cc_capture import store  # noqa: E402
from cc_capture.datasets.bootstrap import generate  # noqa: E402
from conftest import emit, ingest_all, relocated_home  # noqa: E402
from support import readme  # noqa: E402
from test_training import ccd  # noqa: E402

pytestmark = [pytest.mark.training, pytest.mark.timeout(1800)]
SFT_STEPS = 24
HIDDEN = 128  # 64 wide learnt with seed 0 only; 128 wide passes the asserts below with the 5 seeds tried (README)
SEED = int(os.environ.get("CC_LEARNING_SEED", "0"))  # the tiny model's weights, its pretraining, LoRA's
PROJECT = "/home/user/plant"  # where the test's project seems to lie, in every run


def replay(paths, sid, trace):
    """A session as Claude Code's hooks report it: the prompt, each message's calls, the answer."""
    base = {"session_id": sid, "prompt_id": f"{sid}-p", "cwd": "/w"}
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt": trace.prompt})
    for b, (_, calls) in enumerate(trace.steps):
        batch = []
        for i, c in enumerate(calls):
            call = {**base, "tool_name": c.name, "tool_use_id": f"{sid}-t{b}{i}", "tool_input": c.input}
            emit(paths, {**call, "hook_event_name": "PreToolUse"})
            emit(paths, {**call, "hook_event_name": "PostToolUse", "tool_response": {"stdout": c.output}})
            batch.append({"tool_name": c.name, "tool_input": c.input, "tool_use_id": call["tool_use_id"],
                          "tool_response": c.output})
        emit(paths, {**base, "hook_event_name": "PostToolBatch", "tool_calls": batch})
    emit(paths, {**base, "hook_event_name": "Stop", "last_assistant_message": trace.answer})


def at(trace, root: Path, fixed: str):
    """The trace as if the project lay at `fixed`: the temporary folder's path (a new one each run)
    would otherwise change the texts, so the tokenizer trained on them, so every figure."""
    for _, calls in trace.steps:
        for c in calls:
            c.input = json.loads(json.dumps(c.input).replace(str(root.resolve()), fixed))
            c.output = c.output.replace(str(root.resolve()), fixed)
    return trace


def make_project(root: Path) -> Path:
    """A small plant-monitoring project: enough files that the templates' choices differ."""
    for d in ("data", "src", "tests"):
        (root / d).mkdir(parents=True)
    for k in range(12):
        rows = ["unit,temp,vibration"] + [f"pump{i % (k + 2)},{60 + (i * k) % 7},{0.2 + (i % 3) / 10}" for i in range(20)]
        (root / "data" / f"line{k}_sensors.csv").write_text("\n".join(rows + [f"pump9,{140 + k},3.5"]) + "\n")
        (root / "src" / f"station{k}.py").write_text(f"def read_station{k}(unit):\n    return {k}\n\n\n"
                                                     f"class Alarm{k}:\n    pass\n")
        (root / "tests" / f"test_station{k}.py").write_text(f"from src.station{k} import read_station{k}\n\n"
                                                            f"def test_read():\n    assert read_station{k}('p') == {k}\n")
    (root / "schema.sql").write_text("CREATE TABLE units (id INTEGER PRIMARY KEY, name TEXT);\n")
    (root / "README.md").write_text("# Plant monitor\nReads sensors and raises alarms.\n")
    return root


def train_rows(dataset) -> list[dict]:
    return [json.loads(line) for line in (Path(dataset["path"]) / "train.jsonl").read_text().splitlines()]


def constant_guess(rows: list[dict], items) -> tuple[str, int, int]:
    """The trivial baseline tool_accuracy must beat: always the first tool that the train split's
    tool steps make most often (counted on `rows`, the train split, only), guessed for each held-out
    step where Claude called a tool. (tool, steps guessed right, held-out tool steps)."""
    counts = Counter(m["tool_calls"][0]["function"]["name"] for r in rows for m in r["messages"]
                     if m["role"] == "assistant" and m.get("tool_calls"))
    tool = counts.most_common(1)[0][0]
    wanted = [i.first_tool for i in items if i.first_tool]
    return tool, wanted.count(tool), len(wanted)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("learn")
    with relocated_home(home / "cch") as paths:
        (paths.home / "config.toml").write_text(
            "[datasets]\neval_percent = 30\nmax_tool_output_tokens = 24\n"
            "[train]\nlearning_rate = 0.01\nbatch_size = 4\ngradient_accumulation_steps = 1\nsave_steps = 20\n"
            f"max_length = 768\nepochs = 50\nseed = {SEED}\n"
            "[evaluate]\nmax_items = 60\nmax_new_tokens = 96\nbatch_size = 16\nbootstrap_samples = 400\n")
        root = make_project(home / "plant")
        for k, trace in enumerate(generate(root, 80, seed=1)):
            replay(paths, f"b{k:02d}", at(trace, root, PROJECT))
        ingest_all(paths)
        yield paths


@pytest.fixture(scope="module")
def dataset(world):
    return json.loads(ccd("dataset", "build", "--json").stdout)


@pytest.fixture(scope="module")
def base(world, dataset, tmp_path_factory):
    """A tiny Llama, fully fine-tuned briefly on the train split's text without special tokens."""
    from transformers import AutoTokenizer

    from cc_capture.train.tiny import make_tiny_model, pretrain

    rows = train_rows(dataset)
    folder = make_tiny_model(tmp_path_factory.mktemp("model") / "tiny", [json.dumps(r) for r in rows], vocab_size=2048,
                             hidden=HIDDEN, seed=SEED)
    tok = AutoTokenizer.from_pretrained(folder)
    texts = [re.sub(r"<\|[a-z_]+\|>", "", tok.apply_chat_template(r["messages"], tools=json.loads(r["tools"]),
                                                                  tokenize=False)) for r in rows]
    return pretrain(folder, texts, steps=150, seed=SEED)


@pytest.fixture(scope="module")
def sft_eval(world, dataset, base):
    run = json.loads(ccd("train", "--phase", "sft", "--base-model", str(base), "--max-steps", str(SFT_STEPS),
                         "--dataset", dataset["path"], "--json").stdout)
    assert run["status"] == "completed", run
    return json.loads(ccd("eval", run["run_id"], "--json").stdout)


def test_sft_learns_and_the_gate_promotes_it_over_the_base(world, dataset, sft_eval):
    from cc_capture.evaluate.items import load

    e = sft_eval
    base = e["against"]  # registered when the gate first needed a champion
    assert e["model"]["version"] == 1 and base["version"] == 2 and e["model"]["runs"]
    ours, theirs = e["metrics"], base["metrics"]
    tool, right, steps = constant_guess(train_rows(dataset), load(world.evalsets, e["eval_set"]["hash"]).items)
    guess = right / steps
    print(json.dumps({"seed": SEED, "sft": ours, "base": theirs, "intervals": e["intervals"], "counts": e["counts"],
                      "constant_guess": {"tool": tool, "right": right, "steps": steps, "tool_accuracy": guess},
                      "eval_set": e["eval_set"], "timings": e["timings"]}))
    assert theirs["valid_call_rate"] <= 0.1  # the base never ends a turn in the template's format
    assert ours["valid_call_rate"] >= theirs["valid_call_rate"] + 0.15
    assert ours["behavioural_similarity"] >= theirs["behavioural_similarity"] + 0.15
    assert e["intervals"]["valid_call_rate"][0] > theirs["valid_call_rate"] + 0.05  # by trace, not by luck
    assert e["intervals"]["behavioural_similarity"][0] > theirs["behavioural_similarity"] + 0.05
    # tool_accuracy against the trivial baseline, not only the base's structural 0: always guessing the
    # train split's most frequent first tool (Read) gets about a third of the held-out tool steps.
    # The tuned model must beat that guess: seeds 0-4 all do (0.409-0.818 against 0.364). By 0.15 with
    # its by-trace interval's lower end above the guess, only seeds 0-3 do (seed 4: 0.409, it keeps
    # naming the first step's tool): that margin is printed and reported (README), not asserted, since
    # a CPU whose float arithmetic differs from this machine's is in effect another seed, and CI must
    # not fail one run in five.
    assert steps == e["counts"]["tool_accuracy"] >= 30 and theirs["tool_accuracy"] == 0.0
    assert 0.25 <= guess <= 0.45  # the three workflow tools start the steps about equally often
    assert ours["tool_accuracy"] > guess
    assert e["eval_set"]["items"] == 60 and e["eval_set"]["traces"] >= 10
    assert e["decision"]["promote"] and e["decision"]["applied"] and e["decision"]["p_value"] <= 0.1
    status = json.loads(ccd("status", "--json").stdout)["champion"]
    assert status["version"] == 1 and status["behavioural_similarity"] == ours["behavioural_similarity"]
    models = json.loads(ccd("models", "list", "--json").stdout)
    assert [(m["version"], m["status"]) for m in models][:2] == [(1, "champion"), (2, "retired")]
    assert models[1]["reasons"] == ["replaced by v1"] and models[1]["runs"] == []


def test_eval_set_is_held_out_and_frozen(world, dataset, sft_eval):
    from cc_capture.evaluate.items import load

    items = load(world.evalsets, sft_eval["eval_set"]["hash"]).items
    train_sessions = {json.loads(l)["session_id"] for l in (Path(dataset["path"]) / "train.jsonl").open()}
    assert not {i.session_id for i in items} & train_sessions
    again = json.loads(ccd("eval", "1", "--against", "2", "--json").stdout)  # cached: same set, same figures
    assert again["eval_set"] == sft_eval["eval_set"] and again["metrics"] == sft_eval["metrics"]
    assert not again["decision"]["applied"]


def test_a_worse_challenger_is_rejected_with_reasons(world, dataset, base, sft_eval):
    run = json.loads(ccd("train", "--phase", "sft", "--base-model", str(base), "--max-steps", "4",
                         "--dataset", dataset["path"], "--json").stdout)
    e = json.loads(ccd("eval", run["run_id"], "--json").stdout)
    assert e["against"]["version"] == 1 and not e["decision"]["promote"]
    assert any("not higher than the champion" in r for r in e["decision"]["reasons"]), e["decision"]
    shown = json.loads(ccd("models", "show", str(e["model"]["version"]), "--json").stdout)
    assert shown["status"] == "rejected" and shown["events"][-1]["figures"]["against"] == 1
    assert json.loads(ccd("status", "--json").stdout)["champion"]["version"] == 1
    human = ccd("eval", run["run_id"]).stdout
    assert "behavioural_similarity" in human and "rejected" in human


def test_a_failed_evaluation_never_changes_the_champion(world, sft_eval, tmp_path):
    import shutil

    from cc_capture.evaluate import registry

    broken = tmp_path / "broken"
    shutil.copytree(registry.get(store.connect(world.db), 1).path, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    db = store.connect(world.db)
    model = registry.register(db, base_model="tiny", runs=["by-hand"], path=broken,
                              sha256=registry.files_sha256(broken), reasons=["a model whose weights are corrupt"])
    out = ccd("eval", str(model.version), check=False)
    assert out.returncode == 1 and "failed" in out.stderr and "worker.log" in out.stderr
    assert registry.champion(db).version == 1 and registry.get(db, model.version).status.value == "candidate"
    assert "evaluation failed" in registry.events(db, model.version)[-1]["reasons"][0]


def test_a_second_pipeline_is_told_which_one_holds_the_lock(world):
    with open(world.pipeline_lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("pipeline test-holder (pid 1)")
        held.flush()
        busy = ccd("pipeline", "run", "--json", check=False)
    assert busy.returncode == 1 and "pipeline test-holder (pid 1) is running" in busy.stderr
    assert not list(store.connect(world.db).query("SELECT * FROM pipelines"))  # nothing started


def test_json_keys_are_the_documented_ones(world, sft_eval):
    assert set(sft_eval) == readme.keys("eval")
    assert set(sft_eval["model"]) == {"version", "runs", "base_model", "sha256"}
    assert set(sft_eval["eval_set"]) == {"hash", "traces", "items"}
    assert set(sft_eval["decision"]) == {"promote", "reasons", "difference", "p_value", "interval", "applied"}
    for row in json.loads(ccd("models", "list", "--json").stdout):
        assert set(row) == readme.keys("models list")
    assert set(json.loads(ccd("status", "--json").stdout)["champion"]) == {"version", "behavioural_similarity",
                                                                          "promoted_at"}
    assert readme.keys("pipeline run") == {"pipeline_id", "outcome", "model_version", "steps"}
