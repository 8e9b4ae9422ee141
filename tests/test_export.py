"""Export for real: a tiny Llama made here (hidden size 256, so llama.cpp's k-quants apply to every
matrix), trained briefly so its greedy choices are clear, exported through llama.cpp's own converter
and quantizer, verified against the HF model, and deployed to the Ollama test double."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cc_capture.datasets.templates import TRAINING_TEMPLATE
from cc_capture.config import DeploySettings, Quantization
from cc_capture.deploy.deployer import Artifact, deploy
from cc_capture.export import toolchain
from cc_capture.export.exporter import run_export
from cc_capture.export.prompts import built_in
from support.export_model import make_export_model
from support.ollama_double import OllamaDouble

def _gguf_reader():
    sys.path.insert(0, str(toolchain.converter_dir() / "gguf-py"))
    from gguf import GGUFReader

    return GGUFReader


def test_export_says_what_is_missing(paths, tmp_path, monkeypatch):
    monkeypatch.setenv("CC_CAPTURE_LLAMA_CPP_CONVERTER", str(tmp_path / "nowhere"))
    with pytest.raises(toolchain.ToolchainMissing) as e:
        run_export(paths, version=1, model_dir=tmp_path, name="x", quantizations=[])
    if toolchain.installed_version() is not None:
        assert "cc_capture.export.toolchain fetch" in str(e.value) and "converter" in str(e.value)
    else:
        assert "llama-cpp-python" in str(e.value) and "./install.sh --train" in str(e.value)


@pytest.mark.export
@pytest.mark.training
def test_export_converts_quantizes_and_verifies_then_deploys(paths, db, tmp_path):
    if toolchain.missing():
        pytest.fail("the export toolchain is missing (tests/run.sh installs it): " + "; ".join(toolchain.missing()))
    model_dir = make_export_model(tmp_path / "model")
    steps: list[str] = []
    result = run_export(paths, version=1, model_dir=model_dir, name="cc-capture-v1",
                        quantizations=[Quantization.Q8_0, Quantization.Q4_K_M], max_new_tokens=24, on_step=steps.append)

    assert result.passed and set(result.files) == {"f16", "q8_0", "q4_k_m"}
    assert steps[:2] == ["safetensors_f16", "convert_f16"] and "verify_q4_k_m" in steps
    f16 = result.files["f16"].verification
    assert f16.loads and f16.prompts == len(built_in())
    assert f16.exact_sequences == f16.prompts and f16.same_next_tokens == f16.tokens  # token for token
    assert f16.tokenizer_matches == f16.prompts  # llama.cpp's tokenizer gives the ids HF gives
    for q in ("q8_0", "q4_k_m"):
        check = result.files[q].verification
        assert check.loads and check.generated_tokens > 0 and 0.5 <= check.next_token_agreement <= 1.0
    sizes = {q: f.bytes for q, f in result.files.items()}
    assert sizes["f16"] > sizes["q8_0"] > sizes["q4_k_m"]

    GGUFReader = _gguf_reader()
    from gguf import GGMLQuantizationType

    for q, file_type in (("f16", 1), ("q8_0", 7), ("q4_k_m", 15)):
        path = Path(result.files[q].path)
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        reader = GGUFReader(path)
        field = reader.fields["general.file_type"]
        assert int(field.parts[field.data[0]][0]) == file_type
        template = reader.fields["tokenizer.chat_template"]
        assert bytes(template.parts[template.data[0]]).decode() == TRAINING_TEMPLATE.read_text()
        eos = reader.fields["tokenizer.ggml.eos_token_id"]
        tokens = reader.fields["tokenizer.ggml.tokens"]
        assert bytes(tokens.parts[tokens.data[int(eos.parts[eos.data[0]][0])]]).decode() == "<|eot_id|>"
        if q == "q4_k_m":  # real k-quants: every 2-D weight of the blocks is Q4_K or Q6_K, none fell back
            kinds = {t.tensor_type for t in reader.tensors if t.name.startswith("blk.") and len(t.shape) == 2}
            assert kinds <= {GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q6_K} and GGMLQuantizationType.Q4_K in kinds

    q4 = result.files["q4_k_m"]
    with OllamaDouble() as double:
        deployed = deploy(db, DeploySettings(ollama_host=double.url),
                          Artifact(1, Path(q4.path), q4.sha256, "q4_k_m"))
        assert deployed.deployment.digest == f"sha256:{q4.sha256}"
        assert double.models["cc-capture:latest"].model_digest == f"sha256:{q4.sha256}"
