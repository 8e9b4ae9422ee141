"""Direct preference optimisation on (prompt, chosen, rejected) pairs, from the merged SFT model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cc_capture.config import TrainSettings

if TYPE_CHECKING:
    from cc_capture.train.methods import TrainerInputs


@dataclass(frozen=True)
class DPOSlice:
    beta: float
    max_length: int

    @classmethod
    def of(cls, cfg: TrainSettings) -> "DPOSlice":
        return cls(cfg.dpo_beta, cfg.max_length)


def make_trainer(inputs: "TrainerInputs") -> Any:
    from trl import DPOConfig, DPOTrainer

    s = DPOSlice.of(inputs.settings)
    return DPOTrainer(model=inputs.model, args=DPOConfig(beta=s.beta, max_length=s.max_length, **inputs.common),
                      train_dataset=inputs.train.select_columns(["prompt", "chosen", "rejected"]),
                      processing_class=inputs.tokenizer, peft_config=inputs.lora, callbacks=inputs.callbacks)
