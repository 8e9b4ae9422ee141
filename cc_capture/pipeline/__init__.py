"""Long-running actions as library calls: what the CLI, the daemon and (next) the scheduler run alike
(ingest passes, transcript import, registering and evaluating candidate models, the learning pipeline)."""
