"""The local model inside the real Claude Code, side by side with Claude: how Claude Code is started
on Ollama (`launch`), the replays of held-out prompts in git worktrees and their comparison."""
