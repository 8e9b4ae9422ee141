"""The model export is tested and measured on: a tiny Llama made here (hidden size 256 and
intermediate 512, so llama.cpp's k-quants apply to every matrix without falling back), taught one
next step for each built-in verification prompt (a plain answer, one tool call, text then a call,
or two calls at once) so that its next-token choices have clear margins (a random model's near-ties
would flip on any rounding, f16's included); and an SFT dataset folder whose held-out split is those
six steps, so that the model can be registered, gated and its GGUFs evaluated on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cc_capture.datasets.conversation import arguments_json
from cc_capture.datasets.templates import TRAINING_TEMPLATE
from cc_capture.export.prompts import built_in


def _call(name: str, **arguments: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments_json(arguments)}}


# The next step for each built-in prompt: (text, tool calls).
STEPS: list[tuple[str, list[dict[str, Any]]]] = [
    ("I will read the test first.", [_call("Read", file_path="tests/test_store.py")]),
    ("", [_call("Grep", pattern="config", path=".")]),
    ("Running the suite now with pytest.", [_call("Bash", command="pytest -q")]),
    ("I'll add the option to the status command.", []),
    ("This repository captures Claude Code sessions.", []),
    ("", [_call("Grep", pattern="load_settings", path="."), _call("Read", file_path="cc_capture/config.py")]),
]


def conversations() -> list[list[dict[str, Any]]]:
    return [p["messages"] + [{"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}]
            for p, (text, calls) in zip(built_in(), STEPS)]


def make_export_model(out: Path) -> Path:
    """A tiny Llama (hidden 256, 2 layers) taught the built-in prompts' next steps."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cc_capture.train.tiny import make_tiny_model

    tools = built_in()[0]["tools"]
    words = [text for text, _ in STEPS if text] + [c["function"]["arguments"] for _, calls in STEPS for c in calls]
    make_tiny_model(out, [TRAINING_TEMPLATE.read_text()] + words * 8 + [p["messages"][1]["content"] for p in
                                                                       built_in()] * 4, hidden=256, layers=2)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    batch = [torch.tensor(tok.apply_chat_template(c, tools=tools, tokenize=True, return_dict=False))
             for c in conversations()]
    torch.manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        for ids in batch:
            model(input_ids=ids[None], labels=ids[None]).loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.save_pretrained(out)
    return out


def write_dataset(folder: Path) -> Path:
    """An SFT dataset folder (as `ccd dataset build` writes one) whose eval split is the six
    conversations, each a trace of its own session; nothing in train."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"kind": "sft"}))
    (folder / "train.jsonl").write_text("")
    tools = json.dumps(built_in()[0]["tools"])
    with open(folder / "eval.jsonl", "w") as fh:
        for n, messages in enumerate(conversations()):
            fh.write(json.dumps({"trace_id": f"t{n}", "session_id": f"s{n}", "part": 0, "messages": messages,
                                 "tools": tools, "synthetic": False}) + "\n")
    return folder
