"""Merging a LoRA adapter into its base model: the weights DPO and GRPO start from, and the model
the registry evaluates and (later) exports. `python -m cc_capture.train.merge ADAPTER OUT` runs
it in a subprocess; heavy imports stay inside the function."""

from __future__ import annotations

import sys
from pathlib import Path


def merge_adapter(adapter_dir: Path, out_dir: Path) -> Path:
    """Load the adapter onto the base it names, merge, save weights and tokenizer to `out_dir`
    (written beside it first, then renamed: a crash never leaves a half-merged model)."""
    import os
    import shutil

    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    if (out_dir / "config.json").exists():
        return out_dir
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir))
    model.merge_and_unload().save_pretrained(partial)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(partial)
    for f in partial.rglob("*"):
        os.chmod(f, 0o600 if f.is_file() else 0o700)
    os.chmod(partial, 0o700)
    partial.rename(out_dir)
    return out_dir


if __name__ == "__main__":
    merge_adapter(Path(sys.argv[1]), Path(sys.argv[2]))
