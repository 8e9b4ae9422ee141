"""Moved: the deploy settings live with the other settings (cc_capture.config). These names stay
importable while work begun before the move still uses them."""

from cc_capture.config import DEFAULT_OLLAMA_HOST as DEFAULT_HOST, DeploySettings, Quantization  # noqa: F401
