"""What the export subprocess is asked to do and what it reports: typed, JSON across the process
boundary (msgspec). Light: the parent process imports it."""

from __future__ import annotations

from typing import Any

import msgspec


class ExportSpec(msgspec.Struct, frozen=True):
    model_dir: str
    out_dir: str
    name: str  # file stem: NAME-f16.gguf, NAME-q4_k_m.gguf, ...
    quantizations: list[str]
    converter_dir: str
    prompts: list[dict[str, Any]]  # {"messages": [...], "tools": [...]} each, rendered with the chat template
    max_new_tokens: int = 32
    threads: int = 2

    def to_json(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, text: str) -> "ExportSpec":
        return msgspec.json.decode(text, type=cls)


class Verification(msgspec.Struct, frozen=True):
    """One GGUF against the HF model on the fixed prompts."""

    loads: bool
    prompts: int
    tokens: int  # tokens of the HF model's greedy outputs
    same_next_tokens: int  # of those, where the GGUF's next token (teacher-forced) is the same
    next_token_agreement: float
    exact_sequences: int  # prompts whose whole greedy output is identical
    generated_tokens: int
    tokenizer_matches: int  # prompts llama.cpp tokenizes exactly as Hugging Face does


class FileResult(msgspec.Struct, frozen=True):
    path: str
    sha256: str
    bytes: int
    verification: Verification


class ExportResult(msgspec.Struct, frozen=True):
    files: dict[str, FileResult]
    timings_s: dict[str, float]
    passed: bool  # the f16 GGUF matched the HF model token for token on every prompt
    failure: str | None = None

    def to_json(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, text: str) -> "ExportResult":
        return msgspec.json.decode(text, type=cls)

    def as_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)
