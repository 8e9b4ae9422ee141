"""The GRPO behavioural reward: right tool, argument similarity, order, valid format."""

import json

from cc_capture.evaluate.metrics import parse_calls
from cc_capture.evaluate.metrics import step_reward as score
from cc_capture.train.reward import behavioural_reward

REF = [{"name": "Bash", "parameters": {"command": "pytest -q"}}, {"name": "Read", "parameters": {"file_path": "a.py"}}]


def completion(*calls, text="Let me check.\n"):
    return text + "<|python_tag|>" + "\n".join(json.dumps({"name": n, "parameters": p}) for n, p in calls) + "<|eom_id|>"


def test_exact_match_scores_one():
    assert score(completion(("Bash", {"command": "pytest -q"}), ("Read", {"file_path": "a.py"})), REF) == 1.0


def test_parts_are_weighted():
    wrong_tool = score(completion(("Grep", {"pattern": "x"})), REF)
    close_args = score(completion(("Bash", {"command": "pytest"}), ("Read", {"file_path": "a.py"})), REF)
    assert 0 < wrong_tool < close_args < 1.0
    assert score("I'll just answer without tools.", REF) == 0.0
    assert score("<|python_tag|>{not json<|eom_id|>", REF) == 0.0


def test_answer_steps_reward_answering():
    assert score("The tests pass.", []) == 1.0 and score(completion(("Bash", {"command": "ls"})), []) == 0.0


def test_parse_and_trl_signature():
    calls, valid = parse_calls(completion(("Bash", {"command": "ls"})))
    assert valid and calls == [{"name": "Bash", "parameters": {"command": "ls"}}]
    rewards = behavioural_reward([[{"role": "assistant", "content": completion(("Bash", {"command": "pytest -q"}))}]],
                                 reference=[json.dumps(REF)])
    assert len(rewards) == 1 and 0.5 < rewards[0] < 1.0
