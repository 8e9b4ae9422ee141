"""Reasoning signals of a trace, its 35-dimension behaviour vector, and the quality gates.

Pure functions of a `TraceView`: nothing here reads the daemon or the CLI (DESIGN.md).
"""

EXTRACTOR_VERSION = 1
