"""Evaluation throughput: eval items per second, and the share of the time spent generating versus
scoring, batched generation against one prompt at a time (the baseline, measured in the same run).

Items are the steps of bootstrap conversations over this repository (the benchmark measures speed,
not quality, so their split does not matter). The model is a tiny random Llama made here unless
`--hidden/--layers` ask for a bigger one (random weights: every step runs to `--max-new-tokens`,
the worst case). On CUDA the GPU is used, in bfloat16 (`cc_capture.evaluate.generate.load` picks
it; the first output line names the device). NOT MEASURED ON A GPU: no GPU was lent while this was
written, so only the CPU figures in README are real.

    python benchmarks/evaluate.py [--items 48] [--batch-size 16] [--max-new-tokens 48]
                                  [--hidden 64 --layers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def eval_items(n: int):
    from cc_capture.datasets.bootstrap import generate
    from cc_capture.datasets.conversation import arguments_json, message
    from cc_capture.datasets.inference import COMPACT_SYSTEM_PROMPT
    from cc_capture.evaluate.items import items_of

    rows = []
    for k, t in enumerate(generate(REPO / "cc_capture", max(12, n // 3), seed=2)):
        messages = [message("system", COMPACT_SYSTEM_PROMPT), message("user", t.prompt)]
        tools: dict[str, dict] = {}
        for b, (text, calls) in enumerate(t.steps):
            ids = [f"c{b}{i}" for i in range(len(calls))]
            messages.append(message("assistant", text, [
                {"id": i, "type": "function", "function": {"name": c.name, "arguments": arguments_json(c.input)}}
                for i, c in zip(ids, calls)]))
            messages += [message("tool", c.output[:200], name=c.name, tool_call_id=i) for i, c in zip(ids, calls)]
            for c in calls:
                tools[c.name] = {"type": "function", "function": {"name": c.name, "description": "", "parameters": {
                    "type": "object", "properties": {a: {"type": "string"} for a in c.input}, "required": []}}}
        messages.append(message("assistant", t.answer))
        rows.append({"messages": messages, "tools": list(tools.values()), "trace_id": f"t{k}", "session_id": f"s{k}"})
    return [i for r in rows for i in items_of(r)][:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    args = ap.parse_args()

    import torch

    from cc_capture.config import EvaluateSettings
    from cc_capture.evaluate.generate import generate, load
    from cc_capture.evaluate.scoring import score_items, summarise
    from cc_capture.train.tiny import make_tiny_model

    items = eval_items(args.items)
    with tempfile.TemporaryDirectory() as tmp:
        texts = [json.dumps(i.prompt) for i in items]
        folder = make_tiny_model(Path(tmp) / "m", texts, hidden=args.hidden, layers=args.layers)
        tok, model = load(folder)
        params = sum(p.numel() for p in model.parameters())
        prompts = [(i.prompt, i.tools) for i in items]
        generate(tok, model, prompts[:2], max_new_tokens=4)  # warm-up
        results = {}
        for label, batch in (("one at a time", 1), (f"batches of {args.batch_size}", args.batch_size)):
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            completions = generate(tok, model, prompts, max_new_tokens=args.max_new_tokens, batch_size=batch)
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            generated = time.perf_counter() - start
            start = time.perf_counter()
            summarise(score_items(items, completions), EvaluateSettings().weights)
            scored = time.perf_counter() - start
            results[label] = (generated, scored)
    print(f"model: Llama, {params / 1e6:.1f}M parameters (hidden {args.hidden}, {args.layers} layers), "
          f"device {model.device}, {len(items)} items, up to {args.max_new_tokens} new tokens each")
    base = None
    for label, (generated, scored) in results.items():
        total = generated + scored
        rate = len(items) / total
        base = base or rate
        print(f"{label:>16}: {rate:7.2f} items/s ({rate / base:.2f}x one at a time); generate {generated:.2f} s "
              f"({generated / total:.1%}), score {scored:.3f} s ({scored / total:.1%})")


if __name__ == "__main__":
    main()
