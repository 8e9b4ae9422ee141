"""The training settings object: the original defaults, every field overridable
(config.toml `[train]`, `CC_CAPTURE_TRAIN__<NAME>`, or `ccd train` options)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_model: str = Field("meta-llama/Llama-3.1-8B-Instruct", description="a local path or a model name")
    lora_r: int = Field(16, gt=0)
    lora_alpha: int = Field(32, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str = "all-linear"
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(3, gt=0)
    batch_size: int = Field(2, gt=0)
    gradient_accumulation_steps: int = Field(4, gt=0)
    max_steps: int = Field(-1, description="-1: train for `epochs`")
    max_length: int = Field(4096, gt=0)
    load_in_4bit: bool = Field(True, description="QLoRA on CUDA (bitsandbytes or unsloth); ignored on CPU")
    save_steps: int = Field(50, gt=0, description="checkpoint every N steps (resume continues from the last)")
    seed: int = 42
    dpo_beta: float = Field(0.1, gt=0)
    grpo_num_generations: int = Field(4, ge=2)
    grpo_max_completion_length: int = Field(256, gt=0)
    backend: str = Field("auto", pattern="^(auto|unsloth|transformers)$")
