"""Token counts with the training base model's tokenizer, in a subprocess of its own (transformers is
never imported by `ccd` itself): `python -m cc_capture.calibrate.tokenizer` reads
`{"model", "views": [{"texts": {key: text}, "system", "tools"}]}` on stdin and prints one
`{"counts": {key: n}, "rendered_tools": n}` per view, where `rendered_tools` is what the tools add to
the system turn through the training chat template (what the model pays for them), or exits 3 with
the reason on stderr."""

from __future__ import annotations

import json
import sys


def main() -> int:
    job = json.load(sys.stdin)
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(job["model"], local_files_only=True)
    except Exception as e:  # no transformers, or the model is not on this machine: the caller estimates
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 3
    from cc_capture.datasets.templates import TRAINING_TEMPLATE

    template = TRAINING_TEMPLATE.read_text()
    out = []
    for view in job["views"]:
        counts = {k: len(tok(t, add_special_tokens=False)["input_ids"]) for k, t in view["texts"].items()}
        head = [{"role": "system", "content": view["system"]}]
        with_tools = tok.apply_chat_template(head, tools=view["tools"], chat_template=template, tokenize=True)
        without = tok.apply_chat_template(head, chat_template=template, tokenize=True)
        out.append({"counts": counts, "rendered_tools": len(_ids(with_tools)) - len(_ids(without))})
    print(json.dumps(out))
    return 0


def _ids(encoded) -> list[int]:
    return encoded["input_ids"] if isinstance(encoded, dict) or hasattr(encoded, "keys") else encoded


if __name__ == "__main__":
    sys.exit(main())
