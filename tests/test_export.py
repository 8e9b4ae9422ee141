"""Export for real: a tiny Llama made here (hidden size 256, so llama.cpp's k-quants apply to every
matrix), trained briefly so its greedy choices are clear, registered with a dataset whose held-out
split is six steps, and exported by `ccd export` as a user runs it: llama.cpp's own converter and
quantizer, verification against the HF model, each GGUF evaluated on the held-out items in
llama.cpp (the gate's metrics on the shipped file), everything in the registry; then deployed to
the Ollama test double."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from cc_capture import store
from cc_capture.config import DeploySettings, Settings
from cc_capture.datasets.templates import TRAINING_TEMPLATE
from cc_capture.deploy import shipping
from cc_capture.deploy.deployer import Artifact, deploy
from cc_capture.deploy.server import file_sha256
from cc_capture.evaluate import registry
from cc_capture.evaluate.registry import files_sha256
from cc_capture.export import toolchain
from cc_capture.export.prompts import built_in
from conftest import ccd, relocated_home
from support.export_model import make_export_model, write_dataset
from support.ollama_double import OllamaDouble

pytestmark = pytest.mark.timeout(900)  # the module's export runs in its first test's setup
QUANTIZATIONS = ("f16", "q8_0", "q4_k_m")
BLOCK_LLAMA_CPP = """import sys
sys.modules["llama_cpp"] = None  # as if the export extra were not installed
"""


def _gguf_reader():
    sys.path.insert(0, str(toolchain.converter_dir() / "gguf-py"))
    from gguf import GGUFReader

    return GGUFReader


def test_ccd_export_says_what_is_missing(paths, db, tmp_path, monkeypatch):
    """Without the export extra (llama_cpp hidden from the `ccd` process), or without the converter,
    `ccd export` names what is missing and how to install it, and records nothing."""
    version = registry.register(db, base_model="tiny", runs=["r1"], path=tmp_path, sha256="1" * 64,
                                reasons=["test"]).version
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(BLOCK_LLAMA_CPP)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "block"))
    no_extra = ccd("export", str(version), check=False)
    assert no_extra.returncode == 1
    assert ("llama-cpp-python (llama.cpp's quantizer and runtime): install the export extra, `./install.sh "
            "--train`") in no_extra.stderr
    monkeypatch.delenv("PYTHONPATH")
    monkeypatch.setenv("CC_CAPTURE_LLAMA_CPP_CONVERTER", str(tmp_path / "nowhere"))
    no_converter = ccd("export", str(version), check=False)
    assert no_converter.returncode == 1
    if toolchain.installed_version() is not None:
        assert "llama.cpp's converter" in no_converter.stderr
        assert "python -m cc_capture.export.toolchain fetch" in no_converter.stderr
    assert registry.events(db, version)[-1]["reasons"] == ["test"] and not registry.get(db, version).artifacts


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The test model registered with its dataset and exported once by `ccd export VERSION --quantize
    f16 --quantize q8_0 --quantize q4_k_m --json`: (paths, db, version, the JSON it printed)."""
    if toolchain.missing():
        pytest.fail("the export toolchain is missing (tests/run.sh installs it): " + "; ".join(toolchain.missing()))
    root = tmp_path_factory.mktemp("export")
    model_dir = make_export_model(root / "model")
    dataset = write_dataset(root / "dataset")
    with relocated_home(root / "cch") as paths:
        db = store.connect(paths.db)
        version = registry.register(db, base_model="tiny-export", runs=["sft-test"], path=model_dir,
                                    sha256=files_sha256(model_dir), dataset_path=str(dataset),
                                    reasons=["the export test's model"]).version
        args = [a for q in QUANTIZATIONS for a in ("--quantize", q)]
        out = json.loads(ccd("export", str(version), *args, "--json").stdout)
        yield paths, db, version, out
        db.conn.close()


@pytest.mark.export
@pytest.mark.training
def test_ccd_export_converts_quantizes_verifies_and_registers(exported):
    from support import readme

    paths, db, version, out = exported
    assert set(out) == readme.keys("export")
    assert out["version"] == version and out["passed"] and set(out["files"]) == set(QUANTIZATIONS)
    assert list(out["timings_s"])[:2] == ["safetensors_f16", "convert_f16"] and "verify_q4_k_m" in out["timings_s"]
    f16 = out["files"]["f16"]["verification"]
    assert f16["loads"] and f16["prompts"] == len(built_in())  # the dataset's six held-out conversations
    assert f16["exact_sequences"] == f16["prompts"] and f16["same_next_tokens"] == f16["tokens"]  # token for token
    assert f16["tokenizer_matches"] == f16["prompts"]  # llama.cpp's tokenizer gives the ids HF gives
    for q in ("q8_0", "q4_k_m"):
        check = out["files"][q]["verification"]
        assert check["loads"] and check["generated_tokens"] > 0 and 0.5 <= check["next_token_agreement"] <= 1.0
    sizes = {q: f["bytes"] for q, f in out["files"].items()}
    assert sizes["f16"] > sizes["q8_0"] > sizes["q4_k_m"]

    artifacts = registry.get(db, version).artifacts["gguf"]  # the registry holds each file and its true sha256
    for q in QUANTIZATIONS:
        path = Path(artifacts[q]["path"])
        assert path == Path(out["files"][q]["path"]) and path.parent == paths.home / "exports" / f"v{version}"
        assert artifacts[q]["sha256"] == out["files"][q]["sha256"] == file_sha256(path)
        assert artifacts[q]["bytes"] == path.stat().st_size and artifacts[q]["verification"] == out["files"][q][
            "verification"]
    shown = json.loads(ccd("models", "show", str(version), "--json").stdout)
    assert shown["artifacts"]["gguf"] == artifacts

    GGUFReader = _gguf_reader()
    from gguf import GGMLQuantizationType, TokenType

    for q, file_type in (("f16", 1), ("q8_0", 7), ("q4_k_m", 15)):
        path = Path(artifacts[q]["path"])
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        reader = GGUFReader(path)
        field = reader.fields["general.file_type"]
        assert int(field.parts[field.data[0]][0]) == file_type
        template = reader.fields["tokenizer.chat_template"]
        assert bytes(template.parts[template.data[0]]).decode() == TRAINING_TEMPLATE.read_text()
        tokens = reader.fields["tokenizer.ggml.tokens"]
        names = [bytes(tokens.parts[i]).decode() for i in tokens.data]
        eos = reader.fields["tokenizer.ggml.eos_token_id"]
        assert names[int(eos.parts[eos.data[0]][0])] == "<|eot_id|>"
        kinds = reader.fields["tokenizer.ggml.token_type"]
        for special in ("<|python_tag|>", "<|eom_id|>", "<|eot_id|>"):  # one control token each: llama-server
            assert int(kinds.parts[kinds.data[names.index(special)]][0]) == TokenType.CONTROL  # keeps the tag
        if q == "q4_k_m":  # real k-quants: every 2-D weight of the blocks is Q4_K or Q6_K, none fell back
            kinds = {t.tensor_type for t in reader.tensors if t.name.startswith("blk.") and len(t.shape) == 2}
            assert kinds <= {GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q6_K} and GGMLQuantizationType.Q4_K in kinds


@pytest.mark.export
@pytest.mark.training
def test_verification_reads_only_the_logits_it_compares(exported):
    """Teacher forcing asks llama.cpp for the logits of the positions it compares only, not a row of
    vocabulary floats for every token of the context (`logits_all`: gigabytes for a real model's
    vocabulary and long prompts): the same next tokens as all the logits give, in every file, with the
    compared positions across two of llama.cpp's batches; and verifying a prompt longer than a batch
    holds less (numpy, where llama-cpp-python keeps its logits) than one row per position."""
    import tracemalloc

    import numpy as np
    from llama_cpp import Llama

    from cc_capture.evaluate.generate import greedy_gguf
    from cc_capture.export.worker import forced_next_tokens, verify

    _, _, _, out = exported
    prompt = built_in()[0]["messages"][-1]["content"]
    for q in QUANTIZATIONS:
        gguf = out["files"][q]["path"]
        every = Llama(model_path=gguf, n_ctx=2048, n_batch=512, logits_all=True, n_threads=2, verbose=False)
        llm = Llama(model_path=gguf, n_ctx=2048, n_batch=512, n_threads=2, verbose=False)
        text = llm.tokenize(prompt.encode(), add_bos=False)
        for ids in (text, (text * 600)[:505]):  # the 18 compared positions: in one batch; across 512
            forced = greedy_gguf(llm, ids, 12, []) + [5, 17, 300] + text[:3]  # its own path, then off it
            every.reset()
            every.eval(ids + forced[:-1])
            expected = np.argmax(every.scores[len(ids) - 1:len(ids) - 1 + len(forced)], axis=1).tolist()
            assert forced_next_tokens(llm, ids, forced) == expected, (q, len(ids))

    ids = (text * 2000)[:2000]
    continuation = greedy_gguf(llm, ids, 8, [])
    n_ctx, vocab = len(ids) + 8 + 1, llm.n_vocab()  # verify's context: four of llama.cpp's batches of 512
    tracemalloc.start()
    try:
        check = verify(Path(out["files"]["f16"]["path"]), [(prompt, ids)], [continuation], [], 8, 2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert check.loads and check.tokens == 8 and check.same_next_tokens == 8 and check.exact_sequences == 1
    assert peak < n_ctx * vocab * 4, f"verification held {peak} bytes: a row of logits per position or more"


@pytest.mark.export
@pytest.mark.training
def test_each_gguf_is_evaluated_like_the_hf_model(exported, capsys):
    """Evaluate what you ship: each GGUF scored in llama.cpp on the held-out items with the HF
    evaluation's parser and metrics, recorded beside the file; the f16 file scores as the HF model."""
    paths, db, version, out = exported
    model = registry.get(db, version)
    hf = registry.scores_over_time(db, model.sha256)
    assert len(hf) == 1 and hf[0]["items"] == len(built_in())
    for q in QUANTIZATIONS:
        e = out["evaluations"][q]
        assert e == model.artifacts["gguf"][q]["evaluation"]
        assert (e["eval_set_hash"], e["items"], e["traces"]) == (hf[0]["eval_set_hash"], 6, 6)
        assert e["hf_metrics"]["behavioural_similarity"] == hf[0]["behavioural_similarity"]
        cached = registry.cached(db, model.artifacts["gguf"][q]["sha256"], e["eval_set_hash"])
        assert cached.summary.metrics == e["metrics"] and len(cached.item_scores) == 6
        assert all(0.0 <= v <= 1.0 for v in e["metrics"].values() if v is not None)
    f16, hf_metrics = out["evaluations"]["f16"]["metrics"], out["evaluations"]["f16"]["hf_metrics"]
    assert f16 == hf_metrics  # the f16 file writes what the HF model writes (verified token for token above)
    assert hf_metrics["valid_call_rate"] == 1.0  # every step it writes parses and ends its turn
    with capsys.disabled():
        for q in QUANTIZATIONS:
            e = out["evaluations"][q]
            print(f"\n{q}: " + ", ".join(f"{k} {v} (n={e['counts'][k]})" for k, v in e["metrics"].items()))
    human = ccd("models", "show", str(version)).stdout
    assert "GGUF q4_k_m: behavioural similarity" in human and f"on 6 items (HF model" in human

    settings = Settings(deploy=DeploySettings(quantization="q4_k_m"))
    q4 = model.artifacts["gguf"]["q4_k_m"]
    decision = shipping.decide(db, settings, model, Artifact(version, Path(q4["path"]), q4["sha256"], "q4_k_m"))
    loss = hf_metrics["behavioural_similarity"] - q4["evaluation"]["metrics"]["behavioural_similarity"]
    assert decision.ship == (loss <= settings.deploy.max_quantization_loss)
    assert "nothing deployed to compare with" in decision.reasons or not decision.ship


@pytest.mark.export
@pytest.mark.training
def test_the_exported_q4_k_m_deploys_to_the_double(exported):
    paths, db, version, out = exported
    q4 = registry.get(db, version).artifacts["gguf"]["q4_k_m"]
    with OllamaDouble() as double:
        deployed = deploy(db, DeploySettings(ollama_host=double.url),
                          Artifact(version, Path(q4["path"]), q4["sha256"], "q4_k_m"))
        assert deployed.deployment.digest == f"sha256:{q4['sha256']}"
        assert double.models["cc-capture:latest"].model_digest == f"sha256:{q4['sha256']}"
