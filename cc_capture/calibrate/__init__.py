"""What Claude Code sends a model: `ccd calibrate` records it, per Claude Code version."""
