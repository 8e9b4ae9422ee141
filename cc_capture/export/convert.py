"""Run llama.cpp's `convert_hf_to_gguf.py` from the toolchain folder, unchanged but for one case:

llama.cpp names a byte-level BPE tokenizer's pre-tokenizer by hashing how the tokenizer splits a
fixed text, and refuses tokenizers it has no hash for ("BPE pre-tokenizer was not recognized").
A tokenizer trained here (the tiny test model's) has no published hash. When, and only when, the
hash is unknown and `tokenizer.json` declares exactly GPT-2's pre-tokenizer (ByteLevel with its
regex, no normaliser), this names it `gpt-2`, the llama.cpp pre-tokenizer that applies the same
regex; verification then checks that llama.cpp tokenizes the prompts exactly as Hugging Face does.

    python -m cc_capture.export.convert CONVERTER_DIR MODEL_DIR --outfile F.gguf --outtype f16
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

GPT2_PRE_TOKENIZER = "gpt-2"


def declared_gpt2(model_dir: Path) -> bool:
    """Whether the tokenizer's pre-tokenization is exactly GPT-2's byte-level regex split."""
    try:
        spec = json.loads((model_dir / "tokenizer.json").read_text())
    except (OSError, ValueError):
        return False
    pre = spec.get("pre_tokenizer") or {}
    return (spec.get("normalizer") is None and spec.get("model", {}).get("type") == "BPE"
            and pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space"))


def main(argv: list[str]) -> None:
    converter, args = Path(argv[0]), argv[1:]
    sys.path.insert(0, str(converter))
    import convert_hf_to_gguf  # noqa: E402 - from the toolchain folder (it puts its gguf-py on sys.path)
    from conversion import base  # noqa: E402

    known = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer) -> str:
        try:
            return known(self, tokenizer)
        except NotImplementedError:
            if not declared_gpt2(Path(self.dir_model)):
                raise
            logging.getLogger("cc-capture").warning("tokenizer hash unknown to llama.cpp; its tokenizer.json "
                                                    "declares GPT-2's pre-tokenizer: using %r", GPT2_PRE_TOKENIZER)
            return GPT2_PRE_TOKENIZER

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = [str(converter / "convert_hf_to_gguf.py"), *args]
    convert_hf_to_gguf.main()


if __name__ == "__main__":
    main(sys.argv[1:])
