"""Moved: the training settings live with the other settings (cc_capture.config). This name stays
importable while work begun before the move still uses it."""

from cc_capture.config import TrainSettings  # noqa: F401
