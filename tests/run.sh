#!/bin/sh
# The test command (README.md): a private venv in .venv, this checkout with its dev and train
# extras, then pytest. The end-to-end tests install the pinned Claude Code CLI with npm into
# ~/.cache/cc-capture-tests on first use. Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
# torch is pinned to the CPU build (constraints/cpu.txt): any other torch pulls GBs of CUDA packages.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,train]" -c constraints/cpu.txt
export OMP_NUM_THREADS=1
exec .venv/bin/python -m pytest "$@"
