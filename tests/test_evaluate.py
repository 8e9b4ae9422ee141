"""Evaluation's pure parts, checked by hand: the step metrics, the eval set, the bootstrap and
the gate's decision (no model: these run everywhere)."""

import json

import pytest

from cc_capture.config import EvaluateSettings
from cc_capture.evaluate import items as items_mod
from cc_capture.evaluate.gate import decide
from cc_capture.evaluate.metrics import (argument_similarity, composite, multiset_overlap, parse_output,
                                         step_metrics, token_f1)
from cc_capture.evaluate.scoring import ItemScore, paired_difference, score_items, summarise

TOOLS = [{"type": "function", "function": {"name": n, "description": "", "parameters": {
    "type": "object", "properties": p, "required": r}}} for n, p, r in (
    ("Read", {"file_path": {"type": "string"}, "limit": {"type": "integer"}}, ["file_path"]),
    ("Grep", {"pattern": {"type": "string"}, "path": {"type": "string"}}, ["pattern"]),
    ("Bash", {"command": {"type": "string"}}, ["command"]))]
CLAUDE = [{"name": "Read", "parameters": {"file_path": "a.py"}}, {"name": "Grep", "parameters": {"pattern": "x"}}]


def calls(*pairs, text="Let me look.\n", end="<|eom_id|>"):
    return text + "<|python_tag|>" + "\n".join(json.dumps({"name": n, "parameters": p}) for n, p in pairs) + end


def test_valid_steps_and_why_others_are_not():
    assert parse_output("All done.<|eot_id|>", TOOLS).valid
    assert parse_output(calls(("Read", {"file_path": "a.py", "limit": 5})), TOOLS).valid
    for completion, problem in (
            ("All done and then some more words", "never ends"),
            ("<|eot_id|>", "empty answer"),
            ("<|python_tag|>{not json<|eom_id|>", "do not parse"),
            (calls(("Read", {"file_path": "a.py"}), end=""), "without their end token"),
            (calls(("Write", {"file_path": "a.py"})), "unknown tool 'Write'"),
            (calls(("Read", {"limit": 5})), "missing required argument 'file_path'"),
            (calls(("Read", {"file_path": "a.py", "limit": "5"})), "'limit' is not a integer"),
            (calls(("Read", {"file_path": "a.py", "limit": True})), "'limit' is not a integer")):
        out = parse_output(completion, TOOLS)
        assert not out.valid and problem in out.problem, (completion, out.problem)


def test_metrics_on_the_docstring_examples():
    right = step_metrics(parse_output(calls(("Read", {"file_path": "a.py", "limit": 5}), ("Grep", {"pattern": "x"})),
                                      TOOLS), "", CLAUDE)
    assert right == {"valid_call_rate": 1.0, "next_action_accuracy": 1.0, "tool_accuracy": 1.0,
                     "argument_match": 1.0, "parallel_match": 1.0, "answer_similarity": None}
    grep_first = step_metrics(parse_output(calls(("Grep", {"pattern": "x"})), TOOLS), "", CLAUDE)
    assert grep_first["tool_accuracy"] == 0.0 and grep_first["next_action_accuracy"] == 0.0
    assert grep_first["argument_match"] == 1.0  # the Grep call pairs by name with Claude's Grep
    assert grep_first["parallel_match"] == 0.5  # {Grep} vs {Read, Grep}
    two_reads = step_metrics(parse_output(calls(("Read", {"file_path": "b.py"}), ("Read", {"file_path": "a.py"})),
                                          TOOLS), "", CLAUDE)
    assert two_reads["parallel_match"] == pytest.approx(1 / 3)
    assert two_reads["argument_match"] == 0.75  # Read paired with the first Read: "b.py" vs "a.py"
    answered = step_metrics(parse_output("I think it is fine.<|eot_id|>", TOOLS), "", CLAUDE)
    assert answered["next_action_accuracy"] == 0.0 and answered["tool_accuracy"] == 0.0
    assert answered["argument_match"] is None and answered["parallel_match"] == 0.0
    final = step_metrics(parse_output("The tests pass.<|eot_id|>", TOOLS), "All tests pass.", [])
    assert final["answer_similarity"] == pytest.approx(2 / 3) and final["next_action_accuracy"] == 1.0
    assert final["tool_accuracy"] is None
    assert step_metrics(parse_output(calls(("Bash", {"command": "ls"})), TOOLS), "Done.", [])["answer_similarity"] == 0


def test_key_arguments_and_helpers():
    assert argument_similarity("Bash", {"command": "pytest   -q\n"}, {"command": "pytest -q"}) == 1.0
    assert argument_similarity("Read", {"file_path": "a.py", "offset": 3}, {"file_path": "a.py"}) == 1.0
    assert argument_similarity("Grep", {"pattern": "def"}, {"pattern": "def", "path": "src"}) == 0.5
    assert argument_similarity("Task", {"prompt": "x"}, {"prompt": "x", "agent": "y"}) == 0.5  # all arguments
    assert token_f1("", "") == 1.0 and token_f1("a", "") == 0.0 and token_f1("x y", "z") == 0.0
    assert multiset_overlap(["Read", "Read"], ["Read", "Grep"]) == pytest.approx(1 / 3)
    assert composite({"valid_call_rate": 1.0, "tool_accuracy": 0.0, "argument_match": None},
                     {"valid_call_rate": 1, "tool_accuracy": 3, "argument_match": 5}) == 0.25


def row(trace, session, steps, answer="It works.", synthetic=False):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": f"task {trace}"}]
    for i, names in enumerate(steps):
        messages.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": f"{trace}{i}{n}", "type": "function", "function": {"name": n, "arguments": '{"file_path":"a"}'}}
            for n in names]})
        messages += [{"role": "tool", "content": "ok", "tool_call_id": f"{trace}{i}{n}"} for n in names]
    messages.append({"role": "assistant", "content": answer, "tool_calls": None})
    return {"messages": messages, "tools": json.dumps(TOOLS), "trace_id": trace, "session_id": session,
            "part": 0, "synthetic": synthetic}


def write_dataset(folder, train, evaluation, kind="sft"):
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"kind": kind}))
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evaluation))
    return folder


def test_eval_set_is_held_out_teacher_forced_capped_by_trace_and_frozen(tmp_path):
    evaluation = [row(f"t{k}", f"s{k}", [["Read"]] * 4) for k in range(5)]
    leaked = row("leak", "s-train", [["Read"]])
    fake = row("syn", "synthetic-1", [["Read"]], synthetic=True)
    ds = write_dataset(tmp_path / "ds", [row("x", "s-train", [["Read"]])], evaluation + [leaked, fake])
    full = items_mod.from_dataset(ds, 1000)
    assert len(full.items) == 25 and full.traces == 5  # 4 call steps + the answer, per trace
    assert not {i.trace_id for i in full.items} & {"leak", "syn"}
    first = next(i for i in full.items if i.item_id == "t0#0:2")
    assert [m["role"] for m in first.prompt] == ["system", "user"] and first.reference_calls[0]["name"] == "Read"
    later = next(i for i in full.items if i.item_id == "t0#0:10")
    assert [m["role"] for m in later.prompt][-2:] == ["assistant", "tool"] and later.reference_calls == []
    assert later.reference_text == "It works."
    capped = items_mod.from_dataset(ds, 7)
    per_trace = {t: sum(i.trace_id == t for i in capped.items) for t in {i.trace_id for i in capped.items}}
    assert len(capped.items) == 7 and capped.traces == 5 and sorted(per_trace.values()) == [1, 1, 1, 2, 2]
    assert items_mod.from_dataset(ds, 7).hash == capped.hash != full.hash
    items_mod.save(capped, tmp_path / "sets")
    assert items_mod.load(tmp_path / "sets", capped.hash) == capped
    with pytest.raises(items_mod.EvalSetError, match="dpo dataset"):
        items_mod.from_dataset(write_dataset(tmp_path / "dpo", [], [], kind="dpo"), 10)
    with pytest.raises(items_mod.EvalSetError, match="no real held-out trace"):
        items_mod.from_dataset(write_dataset(tmp_path / "empty", [], [fake]), 10)


def test_eval_set_leaves_out_sessions_spent_after_the_dataset_was_built(tmp_path):
    ds = write_dataset(tmp_path / "ds", [], [row(f"t{k}", f"s{k}", [["Read"]]) for k in range(3)])
    full = items_mod.from_dataset(ds, 100)
    # a comparison made a training pair from s1 after the folder was built: it still holds s1 in eval
    spent = items_mod.from_dataset(ds, 100, frozenset({"s1"}))
    assert {i.session_id for i in spent.items} == {"s0", "s2"} and full.traces == 3
    assert spent.hash != full.hash  # so the gate scores the champion again, on the new set
    with pytest.raises(items_mod.EvalSetError, match="no real held-out trace"):
        items_mod.from_dataset(ds, 100, frozenset({"s0", "s1", "s2"}))


def scores(pattern):
    """ItemScores from {trace: [tool_accuracy per step]} (every step valid, Claude called Read)."""
    return [ItemScore(f"{t}:{i}", t, "Read", {"valid_call_rate": 1.0, "next_action_accuracy": v, "tool_accuracy": v,
                                              "argument_match": None, "parallel_match": None,
                                              "answer_similarity": None})
            for t, values in pattern.items() for i, v in enumerate(values)]


def test_bootstrap_resamples_whole_traces():
    weights = EvaluateSettings().weights
    # one trace right on all 9 steps, one wrong on its only step: by trace the spread is wide
    s = summarise(scores({"a": [1.0] * 9, "b": [0.0]}), weights, samples=2000)
    assert s.metrics["tool_accuracy"] == 0.9 and s.counts["tool_accuracy"] == 10
    low, high = s.intervals["tool_accuracy"]
    assert low == 0.0 and high == 1.0  # a resample of [b, b] scores 0, of [a, a] scores 1
    assert s.per_tool == {"Read": {"items": 10, "tool_accuracy": 0.9, "argument_match": None}}
    assert s.metrics["behavioural_similarity"] == pytest.approx((0.2 + 0.2 * 0.9 * 2) / 0.6, abs=1e-4)
    assert summarise(scores({"a": [1.0] * 9, "b": [0.0]}), weights, samples=2000) == s  # seeded


def test_paired_bootstrap_and_gate():
    settings = EvaluateSettings()
    base = scores({f"t{k}": [0.0, 0.0] for k in range(20)})
    better = scores({f"t{k}": [1.0, 1.0 if k % 2 else 0.0] for k in range(20)})
    diff, p, interval = paired_difference(better, base, settings.weights)
    assert diff > 0.3 and p == 0.0 and interval[0] > 0
    d = decide(summarise(better, settings.weights), summarise(base, settings.weights), diff, p, interval, settings)
    assert d.promote and any("higher beyond noise" in r for r in d.reasons)
    noisy = scores({f"t{k}": [1.0 if k == 0 else 0.0] for k in range(20)})
    diff, p, interval = paired_difference(noisy, base, settings.weights)
    d = decide(summarise(noisy, settings.weights), summarise(base, settings.weights), diff, p, interval, settings)
    assert not d.promote and p > 0.1 and "not beyond noise" in d.reasons[0]
    worse = decide(summarise(base, settings.weights), summarise(better, settings.weights),
                   *paired_difference(base, better, settings.weights), settings)
    assert not worse.promote and "not higher" in worse.reasons[0]
    invalid = [ItemScore(s.item_id, s.trace_id, s.tool, dict(s.values, valid_call_rate=0.5)) for s in better]
    d = decide(summarise(invalid, settings.weights), summarise(base, settings.weights),
               *paired_difference(invalid, base, settings.weights), settings)
    assert not d.promote and any("drops by 0.5000 > max_valid_call_drop" in r for r in d.reasons)
    with pytest.raises(ValueError, match="same items"):
        paired_difference(better, base[:2], settings.weights)


def test_score_items_reads_each_output_against_its_item(tmp_path):
    ds = write_dataset(tmp_path / "ds", [], [row("t0", "s0", [["Read"]])])
    items = items_mod.from_dataset(ds, 10).items
    out = score_items(items, [calls(("Read", {"file_path": "a"})), "It works.<|eot_id|>"])
    assert [s.values["next_action_accuracy"] for s in out] == [1.0, 1.0] and out[1].values["answer_similarity"] == 1
    assert out[0].tool == "Read" and out[1].tool is None and out[0].problem is None


def test_weights_are_checked():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown metrics"):
        EvaluateSettings(weights={"speed": 1.0})
    with pytest.raises(ValidationError, match="not all 0"):
        EvaluateSettings(weights={"tool_accuracy": 0.0})


def run_ccd(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "cc_capture", *args], capture_output=True, text=True, timeout=120)


def test_learning_commands_on_an_empty_home_say_what_to_do(paths):
    assert json.loads(run_ccd("models", "list", "--json").stdout) == []
    missing = run_ccd("models", "show", "9")
    assert missing.returncode == 1 and "no model version '9'" in missing.stderr
    nothing = run_ccd("eval")
    assert nothing.returncode == 1 and "no completed training run" in nothing.stderr
    done = json.loads(run_ccd("pipeline", "run", "--json").stdout)
    assert done["outcome"] == "skipped" and done["model_version"] is None
    (step,) = done["steps"]
    assert step["name"] == "dataset" and step["status"] == "skipped" and "no qualifying traces" in step["detail"]
    assert json.loads(run_ccd("status", "--json").stdout)["champion"] is None


def test_registry_promotion_retires_the_old_champion_and_keeps_every_reason(db, tmp_path):
    from cc_capture.evaluate import registry
    from cc_capture.evaluate.champion import ModelStatus

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w").write_text("a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "w").write_text("b")
    base = registry.register(db, base_model="m", runs=[], path=tmp_path / "a",
                             sha256=registry.files_sha256(tmp_path / "a"), reasons=["base"])
    tuned = registry.register(db, base_model="m", runs=["r1"], path=tmp_path / "b",
                              sha256=registry.files_sha256(tmp_path / "b"), reasons=["trained by r1"])
    assert registry.register(db, base_model="m", runs=["r1"], path=tmp_path / "b", sha256=tuned.sha256,
                             reasons=["again"]).version == tuned.version  # same weights: same version
    registry.set_status(db, base.version, ModelStatus.CHAMPION, ["the untuned base"])
    registry.set_status(db, tuned.version, ModelStatus.CHAMPION, ["better"], {"difference": 0.3})
    assert registry.champion(db).version == tuned.version and registry.by_run(db, "r1") == registry.get(db, 2)
    assert registry.get(db, base.version).status is ModelStatus.RETIRED
    assert [(e["status"], e["reasons"]) for e in registry.events(db, base.version)] == [
        ("candidate", ["base"]), ("champion", ["the untuned base"]), ("retired", ["replaced by v2"])]
    assert registry.events(db, tuned.version)[-1]["figures"] == {"difference": 0.3}
    assert registry.files_sha256(tmp_path / "a") != registry.files_sha256(tmp_path / "b")


def test_help_keeps_the_setting_names_in_brackets():
    """Rich reads `[evaluate]` in a help text as markup and drops it unless it is escaped."""
    from conftest import ccd  # wide enough that no help line wraps

    assert "Cap on eval items ([evaluate] max_items)." in ccd("eval", "--help").stdout
    assert "(default: [deploy] quantization)." in ccd("export", "--help").stdout
