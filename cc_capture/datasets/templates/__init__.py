"""Chat templates: the Jinja one training uses, and the Go one Ollama serves the model with."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINING_TEMPLATE = HERE / "llama31_tools.jinja"
OLLAMA_TEMPLATE = HERE / "ollama.gotmpl"
