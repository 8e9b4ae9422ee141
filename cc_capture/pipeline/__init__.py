"""Long-running learning actions as library calls (the CLI, and next the scheduler, call them):
registering candidate models, evaluating them against the champion, the whole pipeline."""
