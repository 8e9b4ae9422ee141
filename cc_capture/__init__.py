"""cc-capture: capture Claude Code sessions into local traces and learn a private model from them."""

__version__ = "0.1.0"
