"""The `[deploy]` settings: where Ollama is, what the model is called there, how it is served.

Light on purpose (pydantic only): `cc_capture.config` imports it, and so does every command.
"""

from __future__ import annotations

import os
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_HOST = "http://127.0.0.1:11434"


class Quantization(str, Enum):
    """The GGUF file types export makes and deploy ships (llama.cpp's names, lower case)."""

    F16 = "f16"
    Q8_0 = "q8_0"
    Q4_K_M = "q4_k_m"


class DeploySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str = Field("cc-capture", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*(/[a-zA-Z0-9][a-zA-Z0-9_.-]*)?$",
                            description="Ollama model name: versions are NAME:vN, the alias NAME:latest")
    ollama_host: str | None = Field(None, description="default: $OLLAMA_HOST, else " + DEFAULT_HOST)
    num_ctx: int = Field(65536, ge=2048, description="context Ollama gives the model (Claude Code needs 64k+)")
    quantization: Quantization = Field(Quantization.Q4_K_M, description="which exported GGUF is deployed")
    keep_versions: int = Field(3, ge=1, description="version tags kept in Ollama (the alias's target and the "
                                                   "previous champion are always kept)")
    timeout_s: float = Field(600.0, gt=0, description="the longest one Ollama request may take")

    def host(self) -> str:
        """The Ollama URL: the setting, else $OLLAMA_HOST, else the local default; scheme and port filled in
        as the Ollama CLI does (`0.0.0.0` means this machine)."""
        raw = (self.ollama_host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST).strip().rstrip("/")
        scheme, sep, rest = raw.partition("://")
        if not sep:
            scheme, rest = "http", raw
        hostport, slash, path = rest.partition("/")
        if hostport.startswith("["):  # [::1]:port
            host, _, port = hostport[1:].partition("]")
            port = port.lstrip(":")
            host = f"[{host}]"
        else:
            host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1"}.get(host, host)
        port = port or ("443" if scheme == "https" else "11434")
        return f"{scheme}://{host}:{port}" + (f"/{path}" if slash and path else "")

    def tag(self, version: int) -> str:
        return f"{self.model_name}:v{version}"

    @property
    def alias(self) -> str:
        return f"{self.model_name}:latest"
