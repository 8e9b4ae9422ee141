"""Training methods, shaped like trl: one module per method, each with the slice of the settings
it reads and a function that makes its trainer; `METHODS` chooses by phase. Light to import:
trl is imported only when a trainer is made (in the worker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from cc_capture.config import TrainSettings
from cc_capture.train.methods import dpo, grpo, sft
from cc_capture.train.runs import Phase


@dataclass(frozen=True)
class TrainerInputs:
    """What every method's trainer is made from (the worker assembles it)."""

    model: Any
    tokenizer: Any
    lora: Any  # a peft LoraConfig, or None when the backend applied LoRA already (unsloth)
    train: Any  # datasets.Dataset
    evaluation: Any  # datasets.Dataset or None
    common: dict[str, Any]  # TrainingArguments shared by all methods
    settings: TrainSettings
    callbacks: list


@dataclass(frozen=True)
class Method:
    dataset_kind: str  # the kind of dataset it trains on ("sft" or "dpo")
    starts_from_sft: bool  # trains on an SFT run's model merged into its base (launch.create picks it)
    make_trainer: Callable[[TrainerInputs], Any]


METHODS: dict[Phase, Method] = {
    Phase.SFT: Method("sft", False, sft.make_trainer),
    Phase.DPO: Method("dpo", True, dpo.make_trainer),
    Phase.GRPO: Method("sft", True, grpo.make_trainer),
}
