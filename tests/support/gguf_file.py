"""Read and write GGUF headers (the key-value metadata) in plain Python, for the Ollama test double
and for deploy tests that need a small, valid GGUF file without llama.cpp. Format: llama.cpp's
docs/gguf.md (little-endian; magic, version 3, tensor count, key-value count, then the pairs)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALARS = {UINT8: "B", INT8: "b", UINT16: "H", INT16: "h", UINT32: "I", INT32: "i", FLOAT32: "f", BOOL: "?",
            UINT64: "Q", INT64: "q", FLOAT64: "d"}
# general.file_type (llama.cpp's llama_ftype) → the name Ollama shows as quantization_level
FILE_TYPES = {0: "F32", 1: "F16", 7: "Q8_0", 14: "Q4_K_S", 15: "Q4_K_M", 32: "BF16"}


def _read(fh: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize("<" + fmt)
    data = fh.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack("<" + fmt, data)[0]


def _string(fh: BinaryIO) -> str:
    return fh.read(_read(fh, "Q")).decode("utf-8", "replace")


def _value(fh: BinaryIO, kind: int) -> Any:
    if kind == STRING:
        return _string(fh)
    if kind == ARRAY:
        item, count = _read(fh, "I"), _read(fh, "Q")
        return [_value(fh, item) for _ in range(count)]
    if kind in _SCALARS:
        return _read(fh, _SCALARS[kind])
    raise ValueError(f"unknown GGUF value type {kind}")


def read_metadata(path: Path) -> dict[str, Any]:
    """The key-value pairs of a GGUF file; ValueError when it is not one."""
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ValueError("invalid file magic")
        version = _read(fh, "I")
        if version not in (2, 3):
            raise ValueError(f"unsupported GGUF version {version}")
        _read(fh, "Q")  # tensor count
        pairs = _read(fh, "Q")
        return {_string(fh): _value(fh, _read(fh, "I")) for _ in range(pairs)}


def _write_value(out: bytearray, value: Any) -> int:
    if isinstance(value, bool):
        out += struct.pack("<?", value)
        return BOOL
    if isinstance(value, int):
        out += struct.pack("<I", value)
        return UINT32
    if isinstance(value, float):
        out += struct.pack("<f", value)
        return FLOAT32
    data = str(value).encode()
    out += struct.pack("<Q", len(data)) + data
    return STRING


def write_header_only(path: Path, metadata: dict[str, Any]) -> Path:
    """A GGUF file with these key-values and no tensors (what a test double needs to read)."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata)))
    for key, value in metadata.items():
        name = key.encode()
        head = bytearray(struct.pack("<Q", len(name)) + name)
        body = bytearray()
        kind = _write_value(body, value)
        out += head + struct.pack("<I", kind) + body
    path.write_bytes(bytes(out))
    return path
