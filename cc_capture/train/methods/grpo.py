"""GRPO from the merged SFT model: each tool-calling step of the conversations is a prompt, and the
behavioural step reward (cc_capture.evaluate.metrics) scores the generations against Claude's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cc_capture.config import TrainSettings

if TYPE_CHECKING:
    from cc_capture.train.methods import TrainerInputs


@dataclass(frozen=True)
class GRPOSlice:
    num_generations: int
    max_completion_length: int

    @classmethod
    def of(cls, cfg: TrainSettings) -> "GRPOSlice":
        return cls(cfg.grpo_num_generations, cfg.grpo_max_completion_length)


def make_trainer(inputs: "TrainerInputs") -> Any:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from cc_capture.datasets.conversation import next_step_prompts
    from cc_capture.train.reward import behavioural_reward

    s = GRPOSlice.of(inputs.settings)
    rows = [r for m in inputs.train["messages"] for r in next_step_prompts(m)]
    if not rows:
        raise RuntimeError("the SFT dataset has no step with a tool call to learn from")
    args = GRPOConfig(num_generations=s.num_generations, max_completion_length=s.max_completion_length,
                      generation_batch_size=s.num_generations,
                      **dict(inputs.common, per_device_train_batch_size=s.num_generations))
    return GRPOTrainer(model=inputs.model, reward_funcs=behavioural_reward, processing_class=inputs.tokenizer,
                       peft_config=inputs.lora, callbacks=inputs.callbacks, train_dataset=Dataset.from_list(rows),
                       args=args)
