"""Preference pairs from where the local model diverges from Claude (`ccd dataset build --dpo
--divergences-from RUN`): the trained model writes its next step for each training prompt where
Claude called tools; when the behavioural reward scores it below a threshold, Claude's step is
chosen over the model's. Heavy imports stay inside the function.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cc_capture.datasets.conversation import arguments_json, message, next_step_prompts
from cc_capture.train.reward import TAG, parse_calls, score


def _as_message(completion: str) -> dict[str, Any]:
    """A generated step as an assistant message (tool calls parsed when they parse)."""
    calls, _ = parse_calls(completion)
    text = completion.split(TAG, 1)[0] if TAG in completion else completion
    tool_calls = [{"id": f"generated-{i}", "type": "function",
                   "function": {"name": c["name"], "arguments": arguments_json(c["parameters"])}}
                  for i, c in enumerate(calls)] or None
    return message("assistant", text.strip(), tool_calls)


def find(run: dict[str, Any], sft_dataset: Path, max_prompts: int = 50, threshold: float = 0.5,
         max_new_tokens: int = 128) -> list[dict[str, Any]]:
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    adapter = run["artifacts"]["adapter_dir"]
    tok = AutoTokenizer.from_pretrained(adapter)
    model = AutoPeftModelForCausalLM.from_pretrained(adapter)
    model.eval()
    stops = [tok.convert_tokens_to_ids(t) for t in ("<|eom_id|>", "<|eot_id|>") if t in tok.get_vocab()]
    rows = [json.loads(l) for l in (sft_dataset / "train.jsonl").read_text().splitlines()]
    pairs: list[dict[str, Any]] = []
    seen = 0
    for row in rows:
        for step in next_step_prompts(row["messages"]):
            if seen >= max_prompts:
                return pairs
            seen += 1
            ids = tok.apply_chat_template(step["prompt"], tools=json.loads(row["tools"]), add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)
            with torch.no_grad():
                out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops or None,
                                     pad_token_id=tok.pad_token_id)
            completion = tok.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=False)
            reference = json.loads(step["reference"])
            value = score(completion, reference)
            if value >= threshold:
                continue
            claude = next(m for m in row["messages"][len(step["prompt"]):] if m["role"] == "assistant")
            pairs.append({"prompt": step["prompt"], "chosen": [claude], "rejected": [_as_message(completion)],
                          "origin": "divergence", "score": value, "trace_ids": [row["trace_id"]],
                          "session_id": row["session_id"], "run_id": run["run_id"]})
    return pairs
