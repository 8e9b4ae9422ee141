"""Events and transcript lines → sessions, traces, tool calls, subagents (see `assemble`)."""
