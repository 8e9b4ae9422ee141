"""Score a registered model on a frozen eval set: generation in a worker subprocess (torch stays
out of this process), scoring and bootstrap here, the result cached by the model's sha256 and the
eval set's hash (a model is never generated twice on the same set). An exported GGUF of the model
is scored the same way (same items, parser and metrics; llama.cpp generates), cached by the
file's sha256."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, NamedTuple

from cc_capture import store, workers
from cc_capture.config import EvaluateSettings, Paths
from cc_capture.evaluate import items as items_mod
from cc_capture.evaluate import registry
from cc_capture.evaluate.items import EvalSet
from cc_capture.evaluate.registry import Evaluation, Model
from cc_capture.evaluate.scoring import score_items, summarise


class EvaluationError(Exception):
    """The model could not be evaluated; the message says why and where the log is."""


class GGUF(NamedTuple):
    """An exported file of a model, scored in llama.cpp instead of its HF weights."""

    path: str
    sha256: str
    quantization: str


def _workdir(paths: Paths, model: Model, evalset: EvalSet, gguf: GGUF | None = None) -> Path:
    kind = f"-{gguf.quantization}-{gguf.sha256[:8]}" if gguf else ""
    folder = paths.evaluations / f"v{model.version}{kind}-{evalset.hash[:12]}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def generate_steps(paths: Paths, model: Model, evalset: EvalSet, settings: EvaluateSettings,
                   on_progress: Callable[[int, int], None] | None = None, gguf: GGUF | None = None) -> dict:
    """Run the worker: {completions: {item_id: text}, timings, device}. Ctrl-C stops it."""
    folder = _workdir(paths, model, evalset, gguf)
    for stale in ("progress.jsonl", "completions.json"):
        (folder / stale).unlink(missing_ok=True)
    job = {"model_dir": model.path, "items_path": str(items_mod.save(evalset, paths.evalsets)),
           "out_path": str(folder / "completions.json"), "progress_path": str(folder / "progress.jsonl"),
           "max_new_tokens": settings.max_new_tokens, "batch_size": settings.batch_size,
           "gguf_path": gguf.path if gguf else None}
    fd = os.open(folder / "job.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(job, fh)
    log = folder / "worker.log"
    proc = workers.start("cc_capture.evaluate.worker", [str(folder / "job.json")], log)
    try:
        for event in workers.follow(folder / "progress.jsonl", proc):
            if on_progress and "done" in event:
                on_progress(event["done"], event["total"])
    except KeyboardInterrupt:
        workers.stop(proc)
        raise
    out = folder / "completions.json"
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise EvaluationError(f"evaluating v{model.version}{f' ({gguf.quantization} GGUF)' if gguf else ''} failed "
                              f"(worker exit {proc.returncode}): "
                              f"{tail[0] if tail else 'no output'}; log: {log}")
    return json.loads(out.read_text())


def evaluate(db: store.Database, paths: Paths, model: Model, evalset: EvalSet, settings: EvaluateSettings,
             on_progress: Callable[[int, int], None] | None = None, gguf: GGUF | None = None) -> Evaluation:
    """The model's figures on this eval set (cached by weights sha256 and set hash), or those of
    one of its exported GGUFs (cached by the file's sha256)."""
    key = gguf.sha256 if gguf else model.sha256
    hit = registry.cached(db, key, evalset.hash)
    if hit is not None:
        return hit
    if not Path(model.path).is_dir():
        raise EvaluationError(f"v{model.version}'s weights are gone from {model.path}")
    if gguf and not Path(gguf.path).is_file():
        raise EvaluationError(f"v{model.version}'s {gguf.quantization} GGUF is gone from {gguf.path}")
    result = generate_steps(paths, model, evalset, settings, on_progress, gguf)
    started = time.perf_counter()
    completions = result["completions"]
    missing = [i.item_id for i in evalset.items if i.item_id not in completions]
    if missing:
        raise EvaluationError(f"the worker wrote no step for {len(missing)} items (first: {missing[0]})")
    scores = score_items(evalset.items, [completions[i.item_id] for i in evalset.items])
    summary = summarise(scores, settings.weights, settings.bootstrap_samples, settings.seed)
    timings = dict(result["timings"], score_s=round(time.perf_counter() - started, 3))
    timings["items_per_s"] = round(len(scores) / max(timings["generate_s"] + timings["score_s"], 1e-9), 3)
    evaluation = Evaluation(key, evalset.hash, time.time(), len(scores), evalset.traces, summary, scores,
                            timings)
    registry.save(db, evaluation)
    return evaluation
