"""Export: merged weights → GGUF f16 → quantized, verified against the HF model (see exporter, worker)."""
