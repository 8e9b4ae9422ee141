"""A test double of Ollama's HTTP API on 127.0.0.1, written from Ollama's docs/api.md and its server
code (server/routes.go, server/create.go, server/images.go at v0.33.0-rc2), for the calls cc-capture
makes: blob HEAD/POST with the digest check, create from files with template and parameters (and
its quantize refusal rules), show with capabilities computed from the template as Ollama does, copy,
delete, tags and version.

No Ollama server can be installed on the test machines (no package on PyPI, npm or Debian), so
deploy is tested against this. What it does not do: run a model, convert safetensors, or quantize
(cc-capture quantizes with llama.cpp before uploading; a create asking the double to quantize an
F16 file is answered 501). Faults are switched on per test: an old version, a disk that fills up,
a create that fails halfway, a server that drops the template it is given.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cc_capture.loopback import LoopbackServer
from support.gguf_file import FILE_TYPES, read_metadata

DIGEST = re.compile(r"^sha256[:-][0-9a-f]{64}$")
QUANTIZE_TYPES = {"F32", "F16", "BF16", "Q8_0", "Q4_K_S", "Q4_K_M", "Q4_K"}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("-")[0].split(".")[:3])


def full_name(name: str) -> str:
    """Ollama's short form of a model name: the tag defaults to `latest`."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _strip_strings(action: str) -> str:
    return re.sub(r'"(?:\\.|[^"\\])*"|`[^`]*`', '""', action)


def template_vars(template: str) -> set[str]:
    """The identifiers a Go template's actions use, lower-cased (Ollama's template.Vars): the field
    names of `.A.B` chains and `$.A` variables outside string literals and comments."""
    names: set[str] = set()
    for action in re.findall(r"\{\{-?(.*?)-?\}\}", template, flags=re.S):
        if action.strip().startswith("/*"):
            continue
        for chain in re.findall(r"(?<![\w)\]])\$?((?:\.[A-Za-z_]\w*)+)", _strip_strings(action)):
            names.update(part.lower() for part in chain.split(".") if part)
    return names


def template_parses(template: str) -> bool:
    """A rough stand-in for Go's parse check: every `{{` closes, and if/range/with blocks balance."""
    if template.count("{{") != template.count("}}"):
        return False
    depth = 0
    for action in re.findall(r"\{\{-?\s*(.*?)\s*-?\}\}", template, flags=re.S):
        word = _strip_strings(action).split(" ", 1)[0]
        if word in ("if", "range", "with", "block", "define"):
            depth += 1
        elif word == "end":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def capabilities(template: str | None, gguf: dict[str, Any]) -> list[str]:
    """As server/images.go: `completion` for a model that is not an embedding model; `tools` when the
    Go template uses `.Tools` (or, with no Go template, when the GGUF's Jinja chat template mentions
    `tools` or `tool_call`); `insert` when it uses `.Suffix`."""
    arch = gguf.get("general.architecture", "")
    caps = ["embedding"] if f"{arch}.pooling_type" in gguf else ["completion"]
    if template:
        used = template_vars(template)
        caps += [c for c, var in (("tools", "tools"), ("insert", "suffix")) if var in used]
    else:
        jinja = str(gguf.get("tokenizer.chat_template", ""))
        if "tools" in jinja or "tool_call" in jinja:
            caps.append("tools")
    return caps


@dataclass
class Manifest:
    model_digest: str
    template: str | None
    parameters: dict[str, Any]
    system: str | None
    modified_at: float

    def digest(self) -> str:
        return hashlib.sha256(json.dumps([self.model_digest, self.template, self.parameters, self.system],
                                         sort_keys=True).encode()).hexdigest()


@dataclass
class OllamaDouble(LoopbackServer):
    """Start with `with OllamaDouble() as ollama:`; `ollama.url` is its address."""

    version: str = "0.33.0"
    disk_bytes: int | None = None  # blob storage beyond this fails with "no space left on device"
    fail_create_after: int | None = None  # a streamed create errors after this many status lines
    drop_template: bool = False  # a server that ignores the template it is given
    blobs: dict[str, Path] = field(default_factory=dict)
    models: dict[str, Manifest] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ollama-double-")
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any = None, content_type: str = "application/json") -> None:
                data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                double.requests.append((self.command, self.path))
                route = getattr(double, f"_{self.command.lower()}_{self.path.split('/')[2] if self.path.startswith('/api/') else ''}", None)
                if route is None:
                    return self._send(404, b"404 page not found", "text/plain")
                route(self)

            do_GET = do_HEAD = do_POST = do_DELETE = _handle

        super().__init__(Handler)

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._dir.cleanup()

    def heal(self) -> None:
        """Switch every fault off again."""
        self.version, self.disk_bytes, self.fail_create_after, self.drop_template = "0.33.0", None, None, False

    # ------------------------------------------------------------ helpers

    def _gguf(self, digest: str) -> dict[str, Any]:
        return read_metadata(self.blobs[digest])

    def _json(self, h: Any) -> dict[str, Any] | None:
        try:
            body = json.loads(h._body() or b"null")
        except ValueError as e:
            h._send(400, {"error": str(e)})
            return None
        if not isinstance(body, dict):
            h._send(400, {"error": "missing request body"})
            return None
        return body

    def _blob_path(self, digest: str) -> Path:
        return Path(self._dir.name) / digest.replace(":", "-")

    def _used_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.blobs.values())

    # ------------------------------------------------------------ routes

    def _get_version(self, h: Any) -> None:
        h._send(200, {"version": self.version})

    def _head_blobs(self, h: Any) -> None:
        digest = h.path.rsplit("/", 1)[-1]
        if not DIGEST.match(digest):
            return h._send(400, {"error": "invalid digest format"})
        h._send(200 if digest in self.blobs else 404)

    def _post_blobs(self, h: Any) -> None:
        digest = h.path.rsplit("/", 1)[-1]
        if not DIGEST.match(digest):
            return h._send(400, {"error": "invalid digest format"})
        data = h._body()
        if self.disk_bytes is not None and self._used_bytes() + len(data) > self.disk_bytes:
            return h._send(500, {"error": f"write {self._blob_path(digest)}: no space left on device"})
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            return h._send(400, {"error": f'digest mismatch, expected "{digest}", got "{got}"'})
        path = self._blob_path(digest)
        path.write_bytes(data)
        self.blobs[digest] = path
        h._send(201)

    def _post_create(self, h: Any) -> None:
        r = self._json(h)
        if r is None:
            return
        if _version(self.version) < (0, 5, 5):  # before the files API: a Modelfile or a path
            if not (r.get("modelfile") or r.get("path")):
                return h._send(400, {"error": "path or Modelfile are required"})
            return h._send(501, {"error": "the test double does not read Modelfiles"})
        name = r.get("model") or r.get("name")
        if not name:
            return h._send(400, {"error": "invalid model name"})
        files = r.get("files") or {}
        for filename, digest in files.items():
            if filename.startswith("/") or ".." in Path(filename).parts:
                return h._send(400, {"error": "file path must be relative"})
            if not DIGEST.match(digest):
                return h._send(400, {"error": "invalid digest format"})
        template = r.get("template")
        if template is not None and not template_parses(template):
            return h._send(400, {"error": "template error: unbalanced actions"})
        stream = r.get("stream", True)
        statuses, error, status_code, manifest = self._create(name, r, files, template)
        if not stream:
            if error:
                return h._send(status_code, {"error": error})
            return h._send(200, {"status": statuses[-1]})
        lines = [json.dumps({"status": s}) for s in statuses] + ([json.dumps({"error": error})] if error else [])
        h._send(200, ("\n".join(lines) + "\n").encode(), "application/x-ndjson")

    def _create(self, name: str, r: dict[str, Any], files: dict[str, str],
                template: str | None) -> tuple[list[str], str | None, int, Manifest | None]:
        """The status lines of a create, then (error, HTTP status) or the manifest written."""
        statuses: list[str] = []

        def fail(error: str, status: int = 500) -> tuple[list[str], str, int, None]:
            return statuses, error, status, None

        base: Manifest | None = None
        if r.get("from"):  # `from` wins over `files` (server/create.go: if From … else if Files …)
            base = self.models.get(full_name(r["from"]))
            if base is None:
                return fail(f"model '{r['from']}' not found", 404)
            model_digest = base.model_digest
        elif files:
            if len(files) != 1 or not next(iter(files)).endswith(".gguf"):
                return fail("unknown type", 400)
            model_digest = next(iter(files.values())).replace("-", ":", 1)
            statuses.append("parsing GGUF")
            if model_digest not in self.blobs:
                return fail(f"open {self._blob_path(model_digest)}: no such file or directory")
            try:
                self._gguf(model_digest)
            except ValueError as e:
                return fail(str(e))
            statuses.append(f"using existing layer {model_digest}")
        else:
            return fail("neither 'from' or 'files' was specified", 400)
        if r.get("quantize"):
            want = str(r["quantize"]).upper()
            if want not in QUANTIZE_TYPES:
                return fail(f"unsupported quantization type {r['quantize']}")
            have = FILE_TYPES.get(self._gguf(model_digest).get("general.file_type", 0), "unknown")
            allowed = ["F16", "BF16", "F32"] if _version(self.version) >= (0, 22, 1) else ["F16", "F32"]
            if have not in allowed:
                return fail(f"quantization is only supported for {', '.join(allowed[:-1])} and {allowed[-1]} models")
            if have != want:
                return fail("the test double does not quantize", 501)
        for what in ("template", "parameters", "system"):
            if r.get(what) is not None:
                statuses.append(f"creating new layer sha256:{hashlib.sha256(json.dumps(r[what]).encode()).hexdigest()}")
        statuses.append("writing manifest")
        if self.fail_create_after is not None and len(statuses) > self.fail_create_after:
            del statuses[self.fail_create_after:]
            return fail("error writing layer: unexpected EOF")
        parameters = dict(base.parameters if base else {}) | (r.get("parameters") or {})
        kept_template = None if self.drop_template else (template if template is not None else
                                                         (base.template if base else None))
        manifest = Manifest(model_digest, kept_template, parameters,
                            r.get("system") if r.get("system") is not None else (base.system if base else None),
                            time.time())
        self.models[full_name(name)] = manifest
        statuses.append("success")
        return statuses, None, 200, manifest

    def _post_show(self, h: Any) -> None:
        r = self._json(h)
        if r is None:
            return
        name = r.get("model") or r.get("name") or ""
        m = self.models.get(full_name(name))
        if m is None:
            return h._send(404, {"error": f"model '{name}' not found"})
        gguf = self._gguf(m.model_digest)
        params = "\n".join(f"{k:<30} {json.dumps(v) if isinstance(v, str) else v}"
                           for k, vs in m.parameters.items() for v in (vs if isinstance(vs, list) else [vs]))
        info = {k: ([] if isinstance(v, list) and not r.get("verbose") else v) for k, v in gguf.items()
                if k != "tokenizer.chat_template"}
        h._send(200, {"modelfile": f"FROM {self._blob_path(m.model_digest)}\n", "parameters": params,
                      "template": m.template or "", "system": m.system, "details": self._details(gguf),
                      "model_info": info, "capabilities": capabilities(m.template, gguf),
                      "modified_at": _iso(m.modified_at)})

    def _details(self, gguf: dict[str, Any]) -> dict[str, Any]:
        arch = gguf.get("general.architecture", "")
        return {"parent_model": "", "format": "gguf", "family": arch, "families": [arch],
                "parameter_size": "", "quantization_level": FILE_TYPES.get(gguf.get("general.file_type", 0), "")}

    def _post_copy(self, h: Any) -> None:
        r = self._json(h)
        if r is None:
            return
        source = self.models.get(full_name(r.get("source") or ""))
        if source is None:
            return h._send(404, {"error": f'model "{r.get("source")}" not found'})
        self.models[full_name(r.get("destination") or "")] = source
        h._send(200)

    def _delete_delete(self, h: Any) -> None:
        r = self._json(h)
        if r is None:
            return
        name = r.get("model") or r.get("name") or ""
        gone = self.models.pop(full_name(name), None)
        if gone is None:
            return h._send(404, {"error": f"model '{name}' not found"})
        if all(m.model_digest != gone.model_digest for m in self.models.values()):  # no other model uses it
            self.blobs.pop(gone.model_digest).unlink()
        h._send(200)

    def _get_tags(self, h: Any) -> None:
        h._send(200, {"models": [
            {"name": name, "model": name, "modified_at": _iso(m.modified_at), "digest": m.digest(),
             "size": self.blobs[m.model_digest].stat().st_size, "details": self._details(self._gguf(m.model_digest))}
            for name, m in sorted(self.models.items())]})


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + "Z"
