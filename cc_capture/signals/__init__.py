"""Reasoning signals of a trace, its 35-dimension behaviour vector, and the quality gates.

Pure functions of a `TraceView`: nothing here reads the daemon or the CLI (DESIGN.md).
"""

# 2: phrase detectors rewritten by meaning against tests/fixtures/signals/ (tuned on its dev
#    split only), with exclusions; more test/lint/typecheck commands count as checks
EXTRACTOR_VERSION = 2
