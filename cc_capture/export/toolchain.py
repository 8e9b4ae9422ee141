"""Where llama.cpp's converter and quantizer come from, and what is missing when they aren't there.

The quantizer (and the runtime that verifies a GGUF) is the `llama-cpp-python` package, built from
its source distribution on PyPI (the `export` extra; pip keeps the built wheel in its cache, so
later installs reuse it). The converter, `convert_hf_to_gguf.py` with its `conversion/` and
`gguf-py/` packages, ships in that same source distribution but not in the wheel: `python -m
cc_capture.export.toolchain fetch` (run by `./install.sh --train` and tests/run.sh) downloads the
sdist with pip and keeps those files in the cache folder. Nothing is fetched at export time, and
nothing ever comes from GitHub. Light: no heavy import here.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "llama-cpp-python"
CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion", "gguf-py", "LICENSE")
PYTHON_NEEDS = ("torch", "transformers", "safetensors", "yaml", "numpy")


class ToolchainMissing(Exception):
    """Export can't run here; the message lists what is missing and how to install it."""


def installed_version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cc-capture"


def converter_dir(version: str | None = None) -> Path:
    """The folder holding the converter that matches the installed llama-cpp-python."""
    explicit = os.environ.get("CC_CAPTURE_LLAMA_CPP_CONVERTER")
    if explicit:
        return Path(explicit)
    return cache_root() / f"llama.cpp-{version or installed_version() or 'unknown'}"


def missing() -> list[str]:
    """What export needs and does not find, each with how to get it."""
    problems = []
    version = installed_version()
    if version is None or importlib.util.find_spec("llama_cpp") is None:
        problems.append(f"{PACKAGE} (llama.cpp's quantizer and runtime): install the export extra, "
                        "`./install.sh --train` (it compiles llama.cpp once; pip caches the result)")
    absent = [m for m in PYTHON_NEEDS if importlib.util.find_spec(m) is None]
    if absent:
        problems.append(f"Python packages {', '.join(absent)}: install the training stack, `./install.sh --train`")
    if version is not None and not (converter_dir(version) / "convert_hf_to_gguf.py").is_file():
        problems.append(f"llama.cpp's converter for {PACKAGE} {version} (not in {converter_dir(version)}): run "
                        "`python -m cc_capture.export.toolchain fetch` in cc-capture's environment "
                        "(`./install.sh --train` does)")
    return problems


def require() -> Path:
    """The converter folder, or ToolchainMissing naming everything that is missing."""
    problems = missing()
    if problems:
        raise ToolchainMissing("export needs llama.cpp's converter and quantizer; missing:\n  - "
                               + "\n  - ".join(problems))
    return converter_dir()


def fetch(version: str | None = None) -> Path:
    """Download llama-cpp-python's sdist from PyPI with pip and keep the converter files from it."""
    version = version or installed_version()
    if version is None:
        raise ToolchainMissing(f"{PACKAGE} is not installed: install the export extra first")
    target = converter_dir(version)
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="cc-capture-sdist-") as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--no-binary", ":all:", f"{PACKAGE}=={version}", "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("*.tar.gz"))
        partial = Path(tmp) / "converter"
        with tarfile.open(sdist) as tar:
            root = tar.getnames()[0].split("/")[0]
            prefix = f"{root}/vendor/llama.cpp/"
            wanted = [m for m in tar.getmembers() if m.name.startswith(prefix)
                      and m.name[len(prefix):].split("/")[0] in CONVERTER_FILES and (m.isfile() or m.isdir())]
            for member in wanted:
                member.name = member.name[len(prefix):]
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # members are plain files anyway
            tar.extractall(partial, members=wanted, **safe)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(partial), target)
    return target


if __name__ == "__main__":
    if sys.argv[1:] == ["fetch"]:
        print(fetch())
    elif sys.argv[1:] == ["check"]:
        problems = missing()
        print("\n".join(problems) or "export toolchain complete")
        sys.exit(1 if problems else 0)
    else:
        sys.exit("usage: python -m cc_capture.export.toolchain fetch|check")
