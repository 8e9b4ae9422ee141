"""The evaluation process: `python -m cc_capture.evaluate.worker JOB.json` (started by
`cc_capture.evaluate.evaluator`). It loads one model (the HF weights, or an exported GGUF in
llama.cpp when the job names one), writes its next step for every item of a frozen eval set
(greedy) and saves them; scoring happens in the starting process.
Progress lines (JSON) go to the job's progress file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from cc_capture.evaluate.items import EvalItem
from cc_capture.workers import append_progress, stop_with_starter


def main(job_path: str) -> int:
    from cc_capture.evaluate.generate import generate, generate_gguf, load, tokenizer

    stop_with_starter()
    job = json.loads(Path(job_path).read_text())
    progress = Path(job["progress_path"])
    items = [EvalItem(**json.loads(l)) for l in Path(job["items_path"]).read_text().splitlines() if l.strip()]
    prompts = [(i.prompt, i.tools) for i in items]
    started = time.perf_counter()
    if job.get("gguf_path"):  # the exported file, in llama.cpp; the model folder gives the tokenizer
        tok, model, device = tokenizer(job["model_dir"]), None, "cpu (llama.cpp)"
    else:
        tok, model = load(job["model_dir"])
        device = str(model.device)
    loaded = time.perf_counter()
    append_progress(progress, {"event": "start", "items": len(items), "device": device})
    done = 0

    def on_batch(n: int) -> None:
        nonlocal done
        done += n
        append_progress(progress, {"done": done, "total": len(items)})

    if model is None:
        completions = generate_gguf(tok, job["gguf_path"], prompts, max_new_tokens=job["max_new_tokens"],
                                    threads=max(1, min(4, os.cpu_count() or 2)), on_batch=on_batch)
    else:
        completions = generate(tok, model, prompts, max_new_tokens=job["max_new_tokens"],
                               batch_size=job["batch_size"], on_batch=on_batch)
    finished = time.perf_counter()
    out = {"completions": dict(zip((i.item_id for i in items), completions)), "device": device,
           "timings": {"load_s": round(loaded - started, 3), "generate_s": round(finished - loaded, 3)}}
    partial = Path(job["out_path"] + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(out, fh)
    partial.rename(job["out_path"])
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main(sys.argv[1]))
