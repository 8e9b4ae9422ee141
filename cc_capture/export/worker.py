"""The export subprocess: merged HF model → safetensors in f16 → GGUF f16 (llama.cpp's converter) →
quantized GGUFs (llama.cpp's quantizer) → verification of every file against the HF model.

    python -m cc_capture.export.worker SPEC.json RESULT.json

Verification: each GGUF must load in llama.cpp and generate. On the fixed prompts, the f16 file's
greedy output must match the HF model's token for token (the HF model runs the same f16 weights,
computing in f32); for every file the share of identical next tokens (teacher-forced along the HF
model's greedy output, llama.cpp computing logits at the compared positions only) and the number of
identical greedy sequences are recorded. Prompts are fed to both as the same token ids; whether
llama.cpp's own tokenizer gives those ids is recorded too.
Heavy imports (torch, transformers, llama_cpp) happen only here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cc_capture.deploy.server import file_sha256
from cc_capture.evaluate.generate import greedy_gguf
from cc_capture.export.spec import ExportResult, ExportSpec, FileResult, Verification

FTYPES = {"q8_0": 7, "q4_k_m": 15}  # llama.cpp's llama_ftype values (LLAMA_FTYPE_MOSTLY_*)
END_TOKENS = ("<|eot_id|>", "<|eom_id|>")


def say(step: str) -> None:
    """A progress line the parent process shows."""
    print(f"step: {step}", flush=True)


def _private(path: Path) -> None:
    os.chmod(path, 0o600 if path.is_file() else 0o700)


def save_f16(model_dir: Path, out: Path) -> None:
    """The merged model's weights in float16 as safetensors, with its tokenizer and cc-capture's chat
    template (which the converter writes into the GGUF as tokenizer.chat_template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cc_capture.datasets.templates import TRAINING_TEMPLATE

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float16)
    model.save_pretrained(out, safe_serialization=True)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = TRAINING_TEMPLATE.read_text()
    tok.save_pretrained(out)
    for f in out.rglob("*"):
        _private(f)


def convert(converter: Path, hf_dir: Path, out: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cc_capture.export.convert", str(converter), str(hf_dir),
                           "--outfile", str(out), "--outtype", "f16"], stdout=sys.stdout, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"llama.cpp's converter failed (exit {done.returncode}); its output is above")


def quantize(src: Path, out: Path, quantization: str, threads: int) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[quantization]
    params.nthread = threads
    code = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), params)
    if code != 0 or not out.is_file():
        raise RuntimeError(f"llama.cpp's quantizer failed to make {quantization} (code {code})")


def _prompt_ids(tok, prompts: list[dict[str, Any]]) -> list[tuple[str, list[int]]]:
    out = []
    for p in prompts:
        text = tok.apply_chat_template(p["messages"], tools=p.get("tools") or None, add_generation_prompt=True,
                                       tokenize=False)
        out.append((text, tok(text, add_special_tokens=False)["input_ids"]))
    return out


def reference(hf_dir: Path, prompts: list[dict[str, Any]], max_new_tokens: int):
    """(prompt texts and ids, the HF model's greedy continuations, the end-token ids)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    vocab = tok.get_vocab()
    stops = [vocab[t] for t in END_TOKENS if t in vocab] or [tok.eos_token_id]
    encoded = _prompt_ids(tok, prompts)
    continuations = []
    with torch.no_grad():
        for _, ids in encoded:
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, eos_token_id=stops,
                                 pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else stops[0])
            continuations.append(out[0, len(ids):].tolist())
    return encoded, continuations, stops


def forced_next_tokens(llm, ids: list[int], forced: list[int]) -> list[int]:
    """llama.cpp's next token (argmax) after the prompt `ids` and after each longer prefix of `forced`
    (teacher forcing along the HF model's output), in one pass as `eval` makes it. llama.cpp is asked
    for the logits of those len(forced) positions only, each reduced to its argmax as it is read:
    `logits_all` would keep a row of vocabulary floats for every token of prompt and output
    (gigabytes for a real model's vocabulary and long prompts) where these few rows are compared.
    What remains is llama-cpp-python's own `scores` array of n_batch rows (allocated, never written
    here: ~260 MB of address space for a 128k vocabulary at n_batch 512) and llama.cpp's output
    buffer for the requested rows."""
    import llama_cpp
    import numpy as np

    tokens = ids + forced[:-1]
    first = len(ids) - 1  # the prompt's last position predicts forced[0]
    llm.reset()
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
    batch = llama_cpp.llama_batch_init(llm.n_batch, 0, 1)
    predicted: list[int] = []
    try:
        for start in range(0, len(tokens), llm.n_batch):
            chunk = tokens[start:start + llm.n_batch]
            batch.n_tokens = len(chunk)
            for i, token in enumerate(chunk):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, start + i, 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = start + i >= first
            if (code := llama_cpp.llama_decode(llm.ctx, batch)) != 0:
                raise RuntimeError(f"llama.cpp could not evaluate the verification prompt (llama_decode: {code})")
            for i in range(max(first - start, 0), len(chunk)):
                row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i), shape=(llm.n_vocab(),))
                predicted.append(int(np.argmax(row)))
    finally:
        llama_cpp.llama_batch_free(batch)
    return predicted


def verify(gguf: Path, encoded: list[tuple[str, list[int]]], continuations: list[list[int]], stops: list[int],
           max_new_tokens: int, threads: int) -> Verification:
    from llama_cpp import Llama

    longest = max(len(ids) for _, ids in encoded) + max_new_tokens + 1
    llm = Llama(model_path=str(gguf), n_ctx=max(512, longest), n_batch=512, n_threads=threads, verbose=False)
    same_next = tokens = exact = tokenized_alike = generated = 0
    for (text, ids), ref in zip(encoded, continuations):
        tokenized_alike += llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        predicted = forced_next_tokens(llm, ids, ref)
        same_next += sum(int(p == r) for p, r in zip(predicted, ref))
        tokens += len(ref)
        out = greedy_gguf(llm, ids, max_new_tokens, stops)  # free-running
        generated += len(out)
        exact += out == ref
    return Verification(loads=True, prompts=len(encoded), tokens=tokens, same_next_tokens=same_next,
                        next_token_agreement=same_next / tokens if tokens else 0.0, exact_sequences=exact,
                        generated_tokens=generated, tokenizer_matches=tokenized_alike)


def run(spec: ExportSpec) -> ExportResult:
    started = time.monotonic()
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _private(out)
    timings: dict[str, float] = {}
    files: dict[str, FileResult] = {}

    def timed(name: str, fn, *args) -> Any:
        t = time.monotonic()
        say(name)
        value = fn(*args)
        timings[name] = round(time.monotonic() - t, 3)
        return value

    hf_dir = out / "hf-f16"
    timed("safetensors_f16", save_f16, Path(spec.model_dir), hf_dir)
    paths = {"f16": out / f"{spec.name}-f16.gguf"}
    timed("convert_f16", convert, Path(spec.converter_dir), hf_dir, paths["f16"])
    for q in spec.quantizations:
        if q != "f16":
            paths[q] = out / f"{spec.name}-{q}.gguf"
            timed(f"quantize_{q}", quantize, paths["f16"], paths[q], q, spec.threads)
    encoded, continuations, stops = timed("reference_hf", reference, hf_dir, spec.prompts, spec.max_new_tokens)
    for q, path in paths.items():
        _private(path)
        check = timed(f"verify_{q}", verify, path, encoded, continuations, stops, spec.max_new_tokens, spec.threads)
        files[q] = FileResult(path=str(path), sha256=file_sha256(path), bytes=path.stat().st_size, verification=check)
    f16 = files["f16"].verification
    passed = f16.exact_sequences == f16.prompts and f16.same_next_tokens == f16.tokens
    timings["total"] = round(time.monotonic() - started, 3)
    return ExportResult(files=files, timings_s=timings, passed=passed,
                        failure=None if passed else "the f16 GGUF's greedy output differs from the HF model's on "
                        f"{f16.prompts - f16.exact_sequences} of {f16.prompts} prompts")


def main(argv: list[str]) -> None:
    spec = ExportSpec.from_json(Path(argv[0]).read_text())
    result = run(spec)
    Path(argv[1]).write_text(result.to_json())
    _private(Path(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
