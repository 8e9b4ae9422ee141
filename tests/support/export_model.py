"""The model export is tested and measured on: a tiny Llama made here (hidden size 256 and
intermediate 512, so llama.cpp's k-quants apply to every matrix without falling back), taught to
answer the built-in verification prompts so that its next-token choices have clear margins (a
random model's near-ties would flip on any rounding, f16's included)."""

from __future__ import annotations

from pathlib import Path

from cc_capture.datasets.templates import TRAINING_TEMPLATE
from cc_capture.export.prompts import built_in

ANSWERS = ["I will read tests/test_store.py first, then run it.", "Let me grep for the config loader.",
           "Running the suite now with pytest.", "I'll add the option to the status command.",
           "This repository captures Claude Code sessions.", "I will rename it everywhere with grep and sed."]


def make_export_model(out: Path) -> Path:
    """A tiny Llama (hidden 256, 2 layers) taught to answer the built-in prompts, so its next-token
    choices have clear margins (a random model's near-ties would flip on any rounding)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cc_capture.train.tiny import make_tiny_model

    conversations = [p["messages"] + [{"role": "assistant", "content": a}] for p, a in zip(built_in(), ANSWERS)]
    tools = built_in()[0]["tools"]
    make_tiny_model(out, [TRAINING_TEMPLATE.read_text()] + ANSWERS * 8 + [p["messages"][1]["content"] for p in
                                                                         built_in()] * 4, hidden=256, layers=2)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    batch = [torch.tensor(tok.apply_chat_template(c, tools=tools, tokenize=True, return_dict=False))
             for c in conversations]
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
