"""Evaluation: behavioural similarity to held-out Claude traces, the model registry and the
champion/challenger gate (heavy imports live in `worker`)."""
