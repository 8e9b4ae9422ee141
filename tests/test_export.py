"""Export: what `ccd export` says when llama.cpp's converter or quantizer is not installed."""

from __future__ import annotations

import pytest

from cc_capture.export import toolchain
from cc_capture.export.exporter import run_export


def test_export_says_what_is_missing(paths, tmp_path, monkeypatch):
    monkeypatch.setenv("CC_CAPTURE_LLAMA_CPP_CONVERTER", str(tmp_path / "nowhere"))
    with pytest.raises(toolchain.ToolchainMissing) as e:
        run_export(paths, version=1, model_dir=tmp_path, name="x", quantizations=[])
    if toolchain.installed_version() is not None:
        assert "cc_capture.export.toolchain fetch" in str(e.value) and "converter" in str(e.value)
    else:
        assert "llama-cpp-python" in str(e.value) and "export extra" in str(e.value)
