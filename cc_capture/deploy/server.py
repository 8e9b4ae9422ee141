"""One Ollama server, through the official `ollama` Python client, with every failure turned into a
`DeployError` that names its cause and the fix.

The client has no call for `HEAD /api/blobs/<digest>` or `GET /api/version`; those two go through
httpx (the client's own HTTP library) to the same URL. Needs Ollama >= 0.6.4: `/api/create` takes
`files` from 0.5.5 on, and `/api/show` lists `capabilities` from 0.6.4 on.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ssl
from enum import Enum
from pathlib import Path
from typing import Callable, Iterator

import httpx
import ollama

MIN_VERSION = (0, 6, 4)
CONNECT_TIMEOUT_S = 5.0


class Fault(str, Enum):
    """Why a deploy or rollback did not happen (stored with each failed attempt)."""

    NOT_RUNNING = "not_running"
    UNREACHABLE = "unreachable"
    TOO_OLD = "too_old"
    OUT_OF_DISK = "out_of_disk"
    BLOB_REJECTED = "blob_rejected"
    CREATE_FAILED = "create_failed"
    NO_TOOLS = "no_tools_capability"
    MODEL_MISSING = "model_missing"
    NOT_EXPORTED = "not_exported"
    NOT_GATED = "not_gated"
    QUANTIZED_WORSE = "quantized_worse"  # the GGUF's own figures fail the deploy gate (deploy/shipping.py)
    NOTHING_TO_ROLL_BACK = "nothing_to_roll_back"
    SERVER_ERROR = "server_error"


class DeployError(Exception):
    """A deploy step failed: `fault` is the cause, the message says what happened and what to do."""

    def __init__(self, fault: Fault, message: str, fix: str) -> None:
        super().__init__(f"{message}. {fix}")
        self.fault = fault
        self.detail = message
        self.fix = fix


def parse_version(text: str) -> tuple[int, ...]:
    """'0.12.7-rc1' → (0, 12, 7); a version Ollama reports for a dev build ('0.0.0') is (0, 0, 0)."""
    parts = []
    for piece in text.lstrip("v").split("-")[0].split("+")[0].split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context per process (the system's trust store), shared by every client: building one
    costs a third of a second."""
    return ssl.create_default_context()


class OllamaServer:
    """The calls deploy and rollback make, at one host."""

    def __init__(self, host: str, timeout_s: float = 600.0) -> None:
        self.host = host
        timeout = httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S)
        self.client = ollama.Client(host=host, timeout=timeout, verify=_tls())
        self.http = httpx.Client(base_url=host, timeout=timeout, verify=_tls())

    def close(self) -> None:
        self.client.close()
        self.http.close()

    def __enter__(self) -> "OllamaServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ fault translation

    @contextlib.contextmanager
    def _faults(self, doing: str, fault: Fault = Fault.SERVER_ERROR) -> Iterator[None]:
        """Turn what the client and httpx raise into a DeployError naming the cause and the fix; an error
        answer that names no known cause is `fault`."""
        try:
            yield
        except DeployError:
            raise
        except ConnectionError as e:  # the client's: httpx.ConnectError, its cause dropped
            raise self._not_running(doing) from e
        except httpx.ConnectError as e:
            if "refused" in str(e).lower():
                raise self._not_running(doing) from e
            raise DeployError(Fault.UNREACHABLE, f"Ollama at {self.host} cannot be reached ({doing}: {e})",
                              "Check the host name and port in [deploy] ollama_host / OLLAMA_HOST and that "
                              "the network allows it") from e
        except httpx.TimeoutException as e:
            raise DeployError(Fault.UNREACHABLE, f"Ollama at {self.host} did not answer in time ({doing}: "
                              f"{type(e).__name__})", "Check that the server at [deploy] ollama_host is Ollama "
                              "and not stuck; raise [deploy] timeout_s for very large models") from e
        except httpx.TransportError as e:
            raise DeployError(Fault.UNREACHABLE, f"the server at {self.host} does not speak Ollama's API "
                              f"({doing}: {e})", "Point [deploy] ollama_host / OLLAMA_HOST at an Ollama "
                              "server") from e
        except ollama.ResponseError as e:
            raise self._response_fault(doing, e.error, e.status_code, fault) from e

    def _not_running(self, doing: str) -> DeployError:
        return DeployError(Fault.NOT_RUNNING, f"Ollama is not running at {self.host} ({doing}: connection refused)",
                           "Start it (`ollama serve`, or the Ollama app), or point [deploy] ollama_host / "
                           "OLLAMA_HOST at the right server")

    def _response_fault(self, doing: str, error: str, status: int, fault: Fault = Fault.SERVER_ERROR) -> DeployError:
        text = str(error)
        low = text.lower()
        if "no space left" in low or "disk full" in low or "not enough space" in low:
            return DeployError(Fault.OUT_OF_DISK, f"Ollama ran out of disk space ({doing}: {text})",
                               "Free space where Ollama keeps models (OLLAMA_MODELS, by default ~/.ollama/models; "
                               "`ollama rm` unused models), then deploy again")
        if "path or modelfile are required" in low:
            return DeployError(Fault.TOO_OLD, f"Ollama at {self.host} is too old to create a model from files "
                               f"({doing}: {text})", "Upgrade Ollama to 0.6.4 or newer")
        if status == 404:
            return DeployError(Fault.MODEL_MISSING, f"Ollama has no such model ({doing}: {text})",
                               "Run `ccd deploy` to create it again")
        return DeployError(fault, f"Ollama failed {doing} (HTTP {status}: {text})",
                           "Read Ollama's log (`journalctl -u ollama`, or ~/.ollama/logs/server.log) for the "
                           "cause, then deploy again")

    # ------------------------------------------------------------ calls

    def version(self) -> str:
        with self._faults("asking its version"):
            response = self.http.get("/api/version")
            if response.status_code != 200:
                raise DeployError(Fault.UNREACHABLE, f"the server at {self.host} is not Ollama (GET /api/version "
                                  f"gave HTTP {response.status_code})", "Point [deploy] ollama_host at an Ollama "
                                  "server")
            try:
                return str(response.json()["version"])
            except (ValueError, KeyError, TypeError) as e:
                raise DeployError(Fault.UNREACHABLE, f"the server at {self.host} is not Ollama (its /api/version "
                                  "has no version)", "Point [deploy] ollama_host at an Ollama server") from e

    def check_version(self) -> str:
        """The server's version, or TOO_OLD when it can't create from files or report capabilities."""
        found = self.version()
        version = parse_version(found)
        if version != (0, 0, 0) and version < MIN_VERSION:
            need = ".".join(map(str, MIN_VERSION))
            raise DeployError(Fault.TOO_OLD, f"Ollama {found} at {self.host} is too old: deploying needs "
                              f"`/api/create` with files and `/api/show` capabilities (Ollama {need})",
                              f"Upgrade Ollama to {need} or newer")
        return found

    def has_blob(self, digest: str) -> bool:
        with self._faults("checking for the model file"):
            response = self.http.head(f"/api/blobs/{digest}")
            if response.status_code not in (200, 404):
                raise self._response_fault("checking for the model file", response.text, response.status_code)
            return response.status_code == 200

    def push_blob(self, path: Path, sha256: str) -> str:
        """Upload a file unless the server has it already; its digest must be the one export recorded."""
        digest = f"sha256:{sha256}"
        if self.has_blob(digest):
            return digest
        with self._faults(f"uploading {path.name}"):
            sent = self.client.create_blob(path)
        if sent != digest:
            raise DeployError(Fault.BLOB_REJECTED, f"{path} changed since it was exported (sha256 {sent[7:19]}…, "
                              f"recorded {sha256[:12]}…)", "Export this version again (`ccd export VERSION`)")
        return digest

    def create(self, tag: str, files: dict[str, str], template: str, parameters: dict,
               on_status: Callable[[str], None] | None = None) -> None:
        with self._faults(f"creating {tag}", Fault.CREATE_FAILED):
            for part in self.client.create(model=tag, files=files, template=template, parameters=parameters,
                                           stream=True):
                if on_status and part.status:
                    on_status(part.status)

    def capabilities(self, tag: str) -> list[str]:
        with self._faults(f"reading {tag}'s capabilities"):
            return list(self.client.show(tag).capabilities or [])

    def copy(self, source: str, destination: str) -> None:
        with self._faults(f"pointing {destination} at {source}"):
            self.client.copy(source, destination)

    def delete(self, tag: str) -> bool:
        """Remove a tag; False when there was none."""
        try:
            with self._faults(f"deleting {tag}"):
                self.client.delete(tag)
        except DeployError as e:
            if e.fault is Fault.MODEL_MISSING:
                return False
            raise
        return True

    def tags(self) -> dict[str, str]:
        """Every model name on the server → its manifest digest."""
        with self._faults("listing models"):
            return {m.model: m.digest for m in self.client.list().models if m.model}
