"""Where everything cc-capture writes lives: one home folder, relocatable with `CC_CAPTURE_HOME`.

Kept apart from the settings (config.py, pydantic) so that `ccd status` and the hooks' helpers
can find the files without loading a validation library.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The folder that holds everything: `$CC_CAPTURE_HOME`, else `$XDG_DATA_HOME/cc-capture`."""
    explicit = os.environ.get("CC_CAPTURE_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "cc-capture"


class Paths:
    """Where each file and folder the program writes lives, derived from one home folder."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or data_home()
        self.journal = self.home / "journal"
        self.db = self.home / "cc-capture.db"
        self.logs = self.home / "logs"
        self.daemon_log = self.logs / "daemon.log"
        self.pidfile = self.home / "ccd.pid"
        self.lockfile = self.home / "ccd.lock"
        self.hook_errors = self.home / "hook-errors.log"
        self.hooks_dir = self.home / "hooks"
        self.config_file = self.home / "config.toml"
        self.datasets = self.home / "datasets"  # one folder per `ccd dataset build`
        self.runs = self.home / "runs"  # one folder per training run: log, progress, checkpoints, adapter
        self.models = self.home / "models"  # merged weights of registered models
        self.evalsets = self.home / "evalsets"  # frozen eval sets, one file per hash
        self.evaluations = self.home / "evaluations"  # evaluation workers' jobs, progress, logs, outputs
        self.pipeline_lock = self.home / "pipeline.lock"  # held by the running pipeline, naming it

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def ensure(self) -> "Paths":
        """Create the private folders (0700) that the daemon and CLI write into."""
        for d in (self.home, self.journal, self.logs):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)
        return self


def private_dir(path: Path) -> Path:
    """Create a folder (and any missing parents) that only the user can enter: 0700, whatever the umask."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path
