#!/bin/sh
# The test command (README.md): a private venv in .venv, this checkout with its dev, train and
# browse extras, then pytest. The end-to-end tests install the pinned Claude Code CLI with npm into
# ~/.cache/cc-capture-tests on first use. Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
# torch is pinned to the CPU build (constraints/cpu.txt): any other torch pulls GBs of CUDA packages.
# The export extra compiles llama.cpp once (constraints/llama-cpp.sh); pip reuses the built wheel after.
here=$(pwd)
. constraints/llama-cpp.sh
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,train,browse,export]" -c constraints/cpu.txt
.venv/bin/python -m cc_capture.export.toolchain fetch >/dev/null
# Go renders the Ollama template in its test, as Ollama does; Debian/Ubuntu CI machines get it here.
if ! command -v go >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go) >/dev/null 2>&1 ||
        echo "tests/run.sh: could not install golang-go; the Ollama template test will say so" >&2
fi
# Headless Chromium loads `ccd browse` pages in its test (Debian's package; skipped with a reason when absent).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 ||
        echo "tests/run.sh: could not install chromium; the browser test will say so" >&2
fi
export OMP_NUM_THREADS=1
exec .venv/bin/python -m pytest "$@"
