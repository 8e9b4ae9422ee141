"""Claude Code transcripts (`~/.claude/projects/**.jsonl`): incremental reading from a stored offset."""
