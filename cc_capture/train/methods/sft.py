"""Supervised fine-tuning on the conversations, loss on the assistant's output only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cc_capture.config import TrainSettings

if TYPE_CHECKING:
    from cc_capture.train.methods import TrainerInputs


@dataclass(frozen=True)
class SFTSlice:
    max_length: int

    @classmethod
    def of(cls, cfg: TrainSettings) -> "SFTSlice":
        return cls(cfg.max_length)


def make_trainer(inputs: "TrainerInputs") -> Any:
    from trl import SFTConfig, SFTTrainer

    s = SFTSlice.of(inputs.settings)
    evaluation = inputs.evaluation
    args = SFTConfig(assistant_only_loss=True, max_length=s.max_length,
                     eval_strategy="epoch" if evaluation else "no", **inputs.common)
    return SFTTrainer(model=inputs.model, args=args, train_dataset=inputs.train.select_columns(["messages"]),
                      eval_dataset=evaluation.select_columns(["messages"]) if evaluation else None,
                      processing_class=inputs.tokenizer, peft_config=inputs.lora, callbacks=inputs.callbacks)
