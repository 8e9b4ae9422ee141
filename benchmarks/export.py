"""Export figures for the test model (tests/support/export_model.py: a tiny Llama, hidden 256, 2
layers, vocabulary 512): time of each step, file size at f16 / q8_0 / q4_k_m (and the ratio to f16,
the baseline of the same run), and each file's agreement with the HF model on the built-in
verification prompts (next tokens teacher-forced; whole greedy outputs).

    .venv/bin/python benchmarks/export.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from cc_capture.config import Quantization  # noqa: E402
from cc_capture.export.exporter import run_export  # noqa: E402
from cc_capture.paths import Paths  # noqa: E402
from support.export_model import make_export_model  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = make_export_model(Path(tmp) / "model")
        started = time.monotonic()
        result = run_export(Paths(Path(tmp) / "home").ensure(), version=1, model_dir=model, name="bench",
                            quantizations=[Quantization.Q8_0, Quantization.Q4_K_M], max_new_tokens=24)
        wall = time.monotonic() - started
    print(f"export wall time {wall:.1f} s; steps (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in result.timings_s.items()))
    base = result.files["f16"].bytes
    print(f"{'type':8} {'bytes':>10} {'vs f16':>7} {'next-token agreement':>22} {'identical outputs':>18}")
    for q, f in result.files.items():
        v = f.verification
        print(f"{q:8} {f.bytes:>10,} {f.bytes / base:>7.3f} {v.same_next_tokens:>8}/{v.tokens:<4} = "
              f"{v.next_token_agreement:.3f} {v.exact_sequences:>10}/{v.prompts}")


if __name__ == "__main__":
    main()
