"""When the daemon starts the learning pipeline on its own: the decision, the machine probes, the
record of each decision, and the scheduler job that runs `ccd pipeline run` as a subprocess."""
