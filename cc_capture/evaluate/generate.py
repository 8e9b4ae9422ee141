"""Greedy, deterministic generation of a model's next step, in batches: what the evaluator and the
divergence finder compare with Claude's step. Heavy imports stay inside the functions: only the
worker processes (evaluation, training, `ccd dataset build --divergences-from`) call them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from cc_capture.evaluate.metrics import END_OF_MESSAGE, END_OF_TURN

Prompt = tuple[list[dict[str, Any]], list[dict[str, Any]]]  # (messages so far, tool schemas)


def tokenizer(model_dir: str | Path):
    """A model folder's tokenizer with cc-capture's chat template, padding on the left (a batch's
    prompts end where generation starts)."""
    from transformers import AutoTokenizer

    from cc_capture.datasets.templates import TRAINING_TEMPLATE

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    tok.chat_template = TRAINING_TEMPLATE.read_text()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load(model_dir: str | Path, device: str | None = None):
    """(tokenizer, model) from a model folder, or an adapter folder (loaded onto its base), with
    cc-capture's chat template; on CUDA in bfloat16 (unsloth's fast inference where installed)."""
    import importlib.util

    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model_dir = str(model_dir)
    tok = tokenizer(model_dir)
    if (Path(model_dir) / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(model_dir)
    elif device == "cuda" and importlib.util.find_spec("unsloth"):
        # NOT RUN YET: written without a GPU that has unsloth installed; see README.
        from unsloth import FastLanguageModel

        model, _ = FastLanguageModel.from_pretrained(model_dir, load_in_4bit=False)
        FastLanguageModel.for_inference(model)
        return tok, model
    else:
        from transformers import AutoModelForCausalLM

        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model.to(device)
    model.eval()
    return tok, model


def _stop_ids(tok) -> list[int]:
    vocab = tok.get_vocab()
    return [vocab[t] for t in (END_OF_MESSAGE, END_OF_TURN) if t in vocab]


def cut(text: str) -> str:
    """A decoded step up to and including its first end token (what comes after is padding)."""
    ends = [i + len(t) for t in (END_OF_MESSAGE, END_OF_TURN) if (i := text.find(t)) >= 0]
    return text[:min(ends)] if ends else text


def render(tok, prompts: Sequence[Prompt]) -> list[str]:
    """Each prompt as the model reads it: the conversation so far and a new assistant header."""
    return [tok.apply_chat_template(msgs, tools=tools, add_generation_prompt=True, tokenize=False)
            for msgs, tools in prompts]


def generate(tok, model, prompts: Sequence[Prompt], max_new_tokens: int = 256, batch_size: int = 8,
             on_batch: Callable[[int], None] | None = None) -> list[str]:
    """Each prompt's next step, greedy, batched by similar length (left-padded), in prompt order."""
    import torch

    texts = render(tok, prompts)
    lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    stops = _stop_ids(tok)
    out: list[str] = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        enc = tok([texts[i] for i in batch], return_tensors="pt", padding=True,
                  add_special_tokens=False).to(model.device)
        with torch.no_grad():
            generated = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                       eos_token_id=stops or None, pad_token_id=tok.pad_token_id)
        width = enc["input_ids"].shape[1]
        for row, i in enumerate(batch):
            new = [t for t in generated[row][width:].tolist() if t != tok.pad_token_id]
            out[i] = cut(tok.decode(new, skip_special_tokens=False))
        if on_batch:
            on_batch(len(batch))
    return out


def greedy_gguf(llm, ids: list[int], max_new_tokens: int, stops: Sequence[int]) -> list[int]:
    """A llama.cpp model's greedy continuation of `ids` (argmax of each next-token distribution, as
    Hugging Face's greedy search), up to and including the first stop token. The logits are read from
    the context (the last position's), so the model needs no `logits_all` (an n_ctx x vocabulary
    array that a real model's long prompts make gigabytes)."""
    import llama_cpp
    import numpy as np

    def last_logits() -> Any:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))

    llm.reset()
    llm.eval(ids)
    out: list[int] = []
    while len(out) < max_new_tokens:
        out.append(int(np.argmax(last_logits())))
        if out[-1] in stops:
            break
        llm.eval([out[-1]])
    return out


def generate_gguf(tok, gguf: str | Path, prompts: Sequence[Prompt], max_new_tokens: int = 256, threads: int = 2,
                  on_batch: Callable[[int], None] | None = None) -> list[str]:
    """Each prompt's next step written by a GGUF file in llama.cpp, the runtime Ollama serves it with:
    the prompt rendered as for the HF model, tokenized by llama.cpp's own tokenizer (as a server
    does), greedy, decoded as the HF model's output is, so the same parser and metrics score it."""
    from llama_cpp import Llama

    texts = render(tok, prompts)
    longest = max((len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts), default=0)
    llm = Llama(model_path=str(gguf), n_ctx=max(512, longest + max_new_tokens + 16), n_batch=512,
                n_threads=threads, verbose=False)
    stops = _stop_ids(tok)
    out = []
    for text in texts:
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        out.append(cut(tok.decode(greedy_gguf(llm, ids, max_new_tokens, stops), skip_special_tokens=False)))
        if on_batch:
            on_batch(1)
    return out
