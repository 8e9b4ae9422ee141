"""The training process: `python -m cc_capture.train.worker RUN_ID` (started by
`cc_capture.train.launch`, for `ccd train` and the pipeline).

Runs one phase of one run row, in its own process so the daemon and the CLI never hold torch.
Checkpoints go to `runs/<id>/checkpoints`; started again, a run resumes from the last one.
Progress lines (JSON) go to `runs/<id>/progress.jsonl` for the CLI's progress bar.

Backends: unsloth when CUDA is there and unsloth is installed (4-bit QLoRA); otherwise
transformers + peft, with bitsandbytes 4-bit on CUDA when asked and installed, and on the CPU
in full precision. The method (SFT, DPO, GRPO) comes from `cc_capture.train.methods`; DPO and
GRPO start from the SFT run recorded when the run was created, its adapter merged into its base model.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from cc_capture import reads, store
from cc_capture.config import Paths, TrainSettings
from cc_capture.processes import start_time
from cc_capture.records import Run, RunStatus
from cc_capture.train import runs
from cc_capture.train.merge import merge_adapter
from cc_capture.train.runs import RunDir
from cc_capture.workers import append_progress, stop_with_starter


def check_trl(version: str, cuda: bool) -> None:
    """trl before 1.16 cannot train on a CPU (its fused log-prob path needs CUDA): say so up front."""
    major, minor = (int(x) for x in version.split(".")[:2])
    if not cuda and (major, minor) < (1, 16):
        raise RuntimeError(f"trl {version} cannot train on the CPU (its fused log-prob path needs CUDA); "
                           "install the train extra (trl >= 1.16): ./install.sh --train")


def choose_backend(cfg: TrainSettings) -> str:
    import importlib.util

    import torch
    import trl

    cuda = torch.cuda.is_available()
    check_trl(trl.__version__, cuda)
    if cfg.backend == "unsloth" or (cfg.backend == "auto" and cuda and importlib.util.find_spec("unsloth")):
        if not cuda:
            raise RuntimeError("the unsloth backend needs a CUDA GPU")
        return "unsloth"
    if cuda and cfg.load_in_4bit and importlib.util.find_spec("bitsandbytes"):
        return "transformers+qlora"
    return "transformers" + ("+cuda" if cuda else "+cpu")


def _progress_callback(path: Path):
    """A TrainerCallback writing one JSON line per log event (what `ccd train` shows)."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            fields = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
            append_progress(path, {"step": state.global_step, "max_steps": state.max_steps, **fields})

    return Progress()


def _tokenizer(base: str):
    from transformers import AutoTokenizer

    from cc_capture.train.tiny import chat_template

    tok = AutoTokenizer.from_pretrained(base)
    tok.chat_template = chat_template()  # ours: tool calls in one turn, assistant-only loss markers
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _model(base: str, cfg: TrainSettings, backend: str):
    """(model, peft_config) for the backend; unsloth returns a model with LoRA already applied."""
    from peft import LoraConfig

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, task_type="CAUSAL_LM")
    # NOT RUN YET: the unsloth and bitsandbytes (QLoRA) branches below were written without a GPU
    # (none was lent while they were built); CI and the tests cover the CPU path only. See README.
    if backend == "unsloth":
        from unsloth import FastLanguageModel

        model, _ = FastLanguageModel.from_pretrained(base, max_seq_length=cfg.max_length, load_in_4bit=cfg.load_in_4bit)
        model = FastLanguageModel.get_peft_model(model, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                                 lora_dropout=cfg.lora_dropout, random_state=cfg.seed)
        return model, None
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {}
    if backend == "transformers+qlora":
        import torch
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    return AutoModelForCausalLM.from_pretrained(base, **kwargs), lora


def _common_args(cfg: TrainSettings, run_dir: RunDir, backend: str) -> dict[str, Any]:
    cpu = backend.endswith("+cpu")
    return dict(output_dir=str(run_dir.checkpoints), learning_rate=cfg.learning_rate,
                num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
                gradient_accumulation_steps=cfg.gradient_accumulation_steps, logging_steps=1,
                save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed, report_to=[], use_cpu=cpu,
                bf16=not cpu, fp16=False, disable_tqdm=True)


def _last_checkpoint(run_dir: RunDir) -> str | None:
    """The newest checkpoint written whole (one an interruption cut short is passed over)."""
    checkpoints = run_dir.complete_checkpoints()
    return str(checkpoints[-1]) if checkpoints else None


def _merged_sft(db, run: Run, run_dir: RunDir) -> tuple[str, str]:
    """DPO and GRPO train on the SFT model the run was created with (`launch.create` chose it): its
    adapter merged into its base, saved once; and the id of that SFT run."""
    from_run = run.artifacts.get("from_run")
    sft = reads.run(db, from_run) if from_run else None
    if sft is None:
        raise RuntimeError(f"run {run.run_id} names no SFT run to start from: create it with `ccd train`")
    return str(merge_adapter(Path(sft.artifacts["adapter_dir"]), run_dir.merged_sft)), sft.run_id


def _train(trainer, run_dir: RunDir) -> dict[str, Any]:
    checkpoint = _last_checkpoint(run_dir)
    append_progress(run_dir.progress, {"event": "start", "pid": os.getpid(), "resume_from": checkpoint})
    result = trainer.train(resume_from_checkpoint=checkpoint)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {"train_loss": result.training_loss, "first_loss": losses[0] if losses else None,
               "last_loss": losses[-1] if losses else None, "steps": trainer.state.global_step,
               "runtime_s": result.metrics.get("train_runtime")}
    for key in ("eval_loss", "rewards/accuracies", "reward", "rewards/behavioural_reward/mean"):
        values = [h[key] for h in trainer.state.log_history if key in h]
        if values:
            metrics[key.replace("/", "_")] = values[-1]
    tokens = next((h["num_tokens"] for h in reversed(trainer.state.log_history) if "num_tokens" in h), None)
    if tokens and result.metrics.get("train_runtime"):
        metrics["tokens_per_s"] = round(tokens / result.metrics["train_runtime"], 1)
    return metrics


def run_phase(db, run: Run, run_dir: RunDir) -> tuple[dict, dict, str]:
    from datasets import load_from_disk

    from cc_capture.train.methods import METHODS, TrainerInputs

    cfg = TrainSettings(**run.config)
    method = METHODS[run.phase]
    backend = choose_backend(cfg)
    runs.update(db, run.run_id, backend=backend)
    data = load_from_disk(str(Path(run.dataset_path) / "hf"))
    base, from_run = _merged_sft(db, run, run_dir) if method.starts_from_sft else (cfg.base_model, None)
    tok = _tokenizer(base)
    model, lora = _model(base, cfg, backend)
    trainer = method.make_trainer(TrainerInputs(
        model=model, tokenizer=tok, lora=lora, train=data["train"], evaluation=data["eval"] if "eval" in data else None,
        common=_common_args(cfg, run_dir, backend), settings=cfg, callbacks=[_progress_callback(run_dir.progress)]))
    metrics = _train(trainer, run_dir)
    trainer.save_model(str(run_dir.adapter))
    tok.save_pretrained(str(run_dir.adapter))
    artifacts = {"adapter_dir": str(run_dir.adapter), "checkpoints_dir": str(run_dir.checkpoints),
                 "log": str(run_dir.log)}
    if from_run:
        artifacts |= {"base_model_dir": base, "from_run": from_run}
    return metrics, artifacts, backend


def main(run_id: str) -> int:
    paths = Paths()
    db = store.connect(paths.db)
    run = reads.run(db, run_id)
    if run is None:
        print(f"no run {run_id}", file=sys.stderr)
        return 2
    run_id = run.run_id
    run_dir = RunDir.of(paths, run_id).ensure()

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    stop_with_starter()  # a `ccd train` or pipeline killed -9 stops its worker too
    runs.update(db, run_id, status=RunStatus.RUNNING, pid=os.getpid(), pid_start=start_time(os.getpid()),
                started_at=time.time(), error=None)
    try:
        metrics, artifacts, backend = run_phase(db, run, run_dir)
    except KeyboardInterrupt:
        runs.update(db, run_id, status=RunStatus.INTERRUPTED, ended_at=time.time(),
                    error="interrupted; `ccd train --resume RUN` continues from the last checkpoint")
        return 130
    except Exception as e:
        traceback.print_exc()
        runs.update(db, run_id, status=RunStatus.FAILED, ended_at=time.time(), error=f"{type(e).__name__}: {e}")
        return 1
    runs.update(db, run_id, status=RunStatus.COMPLETED, ended_at=time.time(), metrics=metrics, artifacts=artifacts,
                backend=backend)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main(sys.argv[1]))
