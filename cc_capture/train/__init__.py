"""Training: SFT, DPO and GRPO of a local model on the traces (heavy imports live in `worker`)."""
