"""Export one registry version: the heavy work runs in a subprocess (cc_capture.export.worker); this
side checks the toolchain, writes the spec, shows progress, keeps the log and reads the result.
Files go to `<data>/exports/vN/` (0700; files 0600). Light: no heavy import here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from cc_capture.paths import Paths
from cc_capture.config import Quantization
from cc_capture.export import toolchain
from cc_capture.export.prompts import prompts_for
from cc_capture.export.spec import ExportResult, ExportSpec


class ExportFailed(Exception):
    """The export subprocess failed, or the f16 GGUF did not match the HF model (then `result` holds the
    figures); the message says where to look."""

    def __init__(self, message: str, result: ExportResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def exports_dir(paths: Paths) -> Path:
    return paths.home / "exports"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_export(paths: Paths, *, version: int, model_dir: Path, name: str, quantizations: list[Quantization],
               dataset_dir: str | None = None, max_new_tokens: int = 32,
               on_step: Callable[[str], None] | None = None) -> ExportResult:
    """Merged weights → f16 safetensors → GGUF f16 → each quantization → verified. The f16 file is
    always made (it is what the others are quantized from and checked against)."""
    converter = toolchain.require()
    if not (model_dir / "config.json").is_file():
        raise ExportFailed(f"{model_dir} holds no merged model (no config.json)")
    root = exports_dir(paths)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    out = root / f"v{version}"
    wanted = [Quantization.F16.value] + [q.value for q in quantizations if q is not Quantization.F16]
    spec = ExportSpec(model_dir=str(model_dir), out_dir=str(out), name=name, quantizations=wanted,
                      converter_dir=str(converter), prompts=prompts_for(dataset_dir), max_new_tokens=max_new_tokens,
                      threads=max(1, min(4, (os.cpu_count() or 2))))
    spec_file, result_file, log = (root / f"v{version}.spec.json", root / f"v{version}.result.json",
                                   root / f"v{version}.log")
    spec_file.write_text(spec.to_json())
    result_file.unlink(missing_ok=True)
    with open(log, "w") as fh:
        os.chmod(log, 0o600)
        proc = subprocess.Popen([sys.executable, "-m", "cc_capture.export.worker", str(spec_file), str(result_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            if on_step and line.startswith("step: "):
                on_step(line[6:].strip())
        code = proc.wait()
    if code != 0 or not result_file.is_file():
        raise ExportFailed(f"export of v{version} failed (exit {code}); log: {log}\n{_tail(log)}")
    result = ExportResult.from_json(result_file.read_text())
    if not result.passed:
        raise ExportFailed(f"v{version} failed verification: {result.failure}; log: {log}", result)
    return result
