"""`ccd doctor`: every way capture can be silently off on a user's machine, checked one by one,
each with what to do about it.

Each check is a small function of a `Context` returning a `Check`. Nothing heavy is imported
here: the training stack is tried in a subprocess, Ollama is asked over HTTP on 127.0.0.1 only
when learning is enabled, and the database is opened read-only.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from cc_capture import hooks_install, journal
from cc_capture.config import ConfigError, Paths, Settings, load_settings
from cc_capture.homelock import info
from cc_capture.health import database_integrity, disk_space
from cc_capture.status import daemon_dict

# The newest Claude Code whose hook payloads and transcript layout are recorded and tested
# (../shared/payloads, tests/support/claude.py pins the same CLI).
KNOWN_CLAUDE_CODE = "2.1.328"
TRAINING_MODULES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate")
STALL_S = 10.0  # a complete journal record this old while the daemon runs: it is not ingesting


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"  # works, but something needs attention
    FAIL = "fail"  # capture (or learning, when enabled) is broken: `ccd doctor` exits 1
    SKIP = "skip"  # does not apply here


@dataclass
class Check:
    name: str
    status: Status
    message: str
    action: str | None = None  # what to do, when the status is not ok
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "message": self.message, "action": self.action,
                "details": self.details}


@dataclass
class Context:
    paths: Paths
    settings: Settings
    config_error: str | None
    now: float

    @property
    def learning(self) -> bool:
        """The user set up learning (a `[learning]` table, enabled): its stack and Ollama must work.
        `enabled` defaults to true, so the default alone does not count."""
        return "learning" in self.settings.model_fields_set and self.settings.learning.enabled


# ---------------------------------------------------------------- the checks


def check_config(ctx: Context) -> Check:
    if ctx.config_error:
        return Check("config", Status.FAIL, ctx.config_error,
                     f"fix {ctx.paths.config_file} (the other checks use the defaults meanwhile)")
    where = str(ctx.paths.config_file) if ctx.paths.config_file.exists() else "defaults (no config.toml)"
    return Check("config", Status.OK, f"settings valid: {where}")


def check_hooks(ctx: Context) -> Check:
    reg = hooks_install.registration()
    details = reg.as_dict()
    total = len(hooks_install.HOOK_EVENTS)
    if reg.error:
        return Check("hooks", Status.FAIL, reg.error, "fix settings.json, then run `ccd hooks install`", details)
    if reg.missing_scripts:
        return Check("hooks", Status.FAIL, f"the registered hook script is missing: {', '.join(reg.missing_scripts)}; "
                     "nothing is captured", "run `ccd hooks install`", details)
    if reg.plugin_enabled and reg.installed:
        return Check("hooks", Status.WARN, f"the cc-capture plugin is enabled and {reg.settings_path} registers the "
                     "hooks too: every event is captured twice", "run `ccd hooks uninstall` (the plugin stays)",
                     details)
    if reg.plugin_enabled:
        return Check("hooks", Status.OK, "hooks registered by the cc-capture plugin", None, details)
    if not reg.installed:
        return Check("hooks", Status.FAIL, f"no capture hooks in {reg.settings_path}: nothing is captured",
                     "run `ccd hooks install` (or enable the cc-capture plugin)", details)
    if reg.missing:
        return Check("hooks", Status.WARN, f"{len(reg.installed)} of {total} events hooked; missing: "
                     f"{', '.join(reg.missing)}", "run `ccd hooks install`", details)
    return Check("hooks", Status.OK, f"all {total} events hooked in {reg.settings_path}", None, details)


def _backlog(ctx: Context) -> tuple[int, int, float | None, float | None]:
    """Journal files, bytes, age of the oldest file and of the oldest complete record (seconds)."""
    files = journal.list_files(ctx.paths.journal)
    oldest = ctx.now - files[0].received_at if files else None
    oldest_complete = None
    for f in files:
        rec = journal.read(ctx.paths.journal, f, ctx.settings.capture.max_read_bytes)
        if rec is not None and rec.complete:
            oldest_complete = ctx.now - f.received_at
            break
    return len(files), sum(f.size for f in files), oldest, oldest_complete


def check_daemon(ctx: Context) -> Check:
    d = info(ctx.paths)
    details: dict[str, Any] = daemon_dict(d) | {"oldest_unread_s": None}
    if not d.running:
        return Check("daemon", Status.FAIL, "the daemon is not running: events wait in the journal"
                     + (f" (its last start failed: {d.error})" if d.error else ""),
                     "run `ccd daemon start` (its log: logs/daemon.log)", details)
    _, _, _, stalled = _backlog(ctx)
    stall_s = max(STALL_S, 5 * ctx.settings.capture.poll_interval_s)
    details["oldest_unread_s"] = None if stalled is None else round(stalled, 1)
    restart = f"look at {ctx.paths.daemon_log}, then `ccd daemon stop && ccd daemon start`"
    if not d.ready and (d.uptime_s or 0) > stall_s:
        return Check("daemon", Status.FAIL, f"the daemon (pid {d.pid}) has not become ready in "
                     f"{d.uptime_s:.0f}s", restart, details)
    if stalled is not None and stalled > stall_s and (d.uptime_s or 0) > stall_s:
        return Check("daemon", Status.FAIL, f"the daemon (pid {d.pid}) runs but is not ingesting: a complete "
                     f"record has waited {stalled:.0f}s", restart, details)
    if d.warnings:
        return Check("daemon", Status.WARN, f"running (pid {d.pid}), with warnings: {'; '.join(d.warnings)}",
                     restart, details)
    return Check("daemon", Status.OK, f"running (pid {d.pid}) and ingesting", None, details)


def check_journal(ctx: Context) -> Check:
    files, size, oldest, _ = _backlog(ctx)
    details = {"files": files, "bytes": size, "oldest_age_s": None if oldest is None else round(oldest, 1)}
    if not files:
        return Check("journal", Status.OK, "empty: every event is ingested", None, details)
    message = f"{files} records ({size:,} bytes) waiting, the oldest {oldest:.0f}s old"
    if oldest is not None and oldest > ctx.settings.capture.incomplete_grace_s:
        return Check("journal", Status.WARN, message, "start the daemon (`ccd daemon start`) or run `ccd ingest`; "
                     "`ccd doctor` shows whether it ingests", details)
    return Check("journal", Status.OK, message, None, details)


def check_database(ctx: Context) -> Check:
    db = ctx.paths.db
    details: dict[str, Any] = {"path": str(db), "bytes": None, "quick_check": None}
    if not db.exists():
        return Check("database", Status.WARN, f"no database yet at {db}",
                     "it is created when the daemon first runs: `ccd daemon start`", details)
    details["bytes"] = db.stat().st_size
    health = database_integrity(db)
    details["quick_check"] = ["ok"] if health.ok else health.problems
    if not health.ok:
        return Check("database", Status.FAIL, f"{db} is damaged: {health.problems[0]}", health.advice, details)
    return Check("database", Status.OK, f"{db} passes quick_check ({details['bytes']:,} bytes)", None, details)


def check_disk(ctx: Context) -> Check:
    where = ctx.paths.home
    while not where.exists() and where != where.parent:  # not created yet: the disk it will be on
        where = where.parent
    space = disk_space(where)
    if space is None:
        return Check("disk", Status.SKIP, f"cannot tell the free space where {where} lives", None,
                     {"path": str(where), "free_bytes": None, "total_bytes": None, "full": None, "low": None})
    details = space.as_dict()
    message = f"{space.free_bytes / 2**30:.2f} GB free of {space.total_bytes / 2**30:.1f} GB where {where} lives"
    if space.full:
        return Check("disk", Status.FAIL, message + ": hooks cannot record events", "free some space on that disk",
                     details)
    if space.low:
        return Check("disk", Status.WARN, message, "free some space on that disk before it fills", details)
    return Check("disk", Status.OK, message, None, details)


def check_file_modes(ctx: Context) -> Check:
    """Everything under the data folder is the user's, 0700/0600 (the venv aside: it holds no data)."""
    loose: list[str] = []
    foreign: list[str] = []
    uid = os.getuid()
    home = str(ctx.paths.home)
    for root, dirs, files in os.walk(home):
        if root == home:
            dirs[:] = [d for d in dirs if d != "venv"]
        for p in ([home] if root == home else []) + [os.path.join(root, name) for name in [*dirs, *files]]:
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_uid != uid:
                foreign.append(p)
            elif st.st_mode & 0o077:
                loose.append(f"{p} ({stat.S_IMODE(st.st_mode):04o})")
    details = {"too_open": loose[:20], "not_owned": foreign[:20]}
    if foreign:
        return Check("file_modes", Status.FAIL, f"{len(foreign)} files are not yours, e.g. {foreign[0]}",
                     f"chown -R {uid} {ctx.paths.home}", details)
    if loose:
        return Check("file_modes", Status.WARN, f"{len(loose)} files or folders others can read, e.g. {loose[0]}",
                     f"chmod -R go-rwx {ctx.paths.home}", details)
    return Check("file_modes", Status.OK, "folders 0700, files 0600", None, details)


def check_transcripts(ctx: Context) -> Check:
    roots = ctx.settings.capture.roots()
    found = [r for r in roots if r.exists()]
    unreadable = [str(r) for r in found if not (r.is_dir() and os.access(r, os.R_OK | os.X_OK))]
    details = {"roots": [str(r) for r in roots], "missing": [str(r) for r in roots if not r.exists()],
               "unreadable": unreadable}
    if unreadable:
        return Check("transcripts", Status.FAIL, f"cannot read {', '.join(unreadable)}",
                     "make it a folder you can read, or set [capture] transcript_roots", details)
    if not found:
        return Check("transcripts", Status.WARN, f"no transcript folder yet ({', '.join(map(str, roots))})",
                     "run Claude Code once, or set [capture] transcript_roots", details)
    return Check("transcripts", Status.OK, f"readable: {', '.join(map(str, found))}", None, details)


def _newest_transcript(roots: list[Path]) -> Path | None:
    """The most recently written main transcript (`<root>/<project>/<session>.jsonl`)."""
    newest: tuple[float, Path] | None = None
    for root in roots:
        try:
            projects = [e for e in os.scandir(root) if e.is_dir()]
        except OSError:
            continue
        for project in projects:
            try:
                entries = list(os.scandir(project.path))
            except OSError:
                continue
            for e in entries:
                if e.name.endswith(".jsonl") and e.is_file():
                    mtime = e.stat().st_mtime
                    if newest is None or mtime > newest[0]:
                        newest = (mtime, Path(e.path))
    return newest[1] if newest else None


def _version_in(path: Path, tail_bytes: int = 256 * 1024) -> str | None:
    """The `version` field of the last transcript line that has one (read from the end)."""
    with open(path, "rb") as fh:
        fh.seek(max(0, os.fstat(fh.fileno()).st_size - tail_bytes))
        lines = fh.read().splitlines()
    for line in reversed(lines):
        try:
            version = json.loads(line).get("version")
        except (ValueError, AttributeError):
            continue
        if isinstance(version, str):
            return version
    return None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])


def check_claude_version(ctx: Context) -> Check:
    path = _newest_transcript(ctx.settings.capture.roots())
    version = _version_in(path) if path else None
    details = {"version": version, "transcript": str(path) if path else None, "known": KNOWN_CLAUDE_CODE}
    if version is None:
        return Check("claude_code", Status.SKIP, "no transcript with a version yet", None, details)
    if _version_key(version) > _version_key(KNOWN_CLAUDE_CODE):
        return Check("claude_code", Status.WARN, f"Claude Code {version} is newer than the formats cc-capture knows "
                     f"({KNOWN_CLAUDE_CODE}): capture works, new events or fields may be missed",
                     "upgrade cc-capture (`git pull && ./install.sh`)", details)
    return Check("claude_code", Status.OK, f"Claude Code {version}: a known format", None, details)


_PROBE = """
import importlib, json, sys
versions = {}
for name in sys.argv[1:]:
    try:
        versions[name] = str(getattr(importlib.import_module(name), "__version__", "?"))
    except Exception:
        versions[name] = None
print(json.dumps(versions))
"""


def _installed_versions() -> dict[str, str | None]:
    """What pip installed (its metadata; nothing is imported)."""
    versions: dict[str, str | None] = {}
    for name in TRAINING_MODULES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _imported_versions(timeout_s: float) -> dict[str, str | None]:
    """Each module really imported, in a subprocess (the CLI never loads torch)."""
    p = subprocess.run([sys.executable, "-c", _PROBE, *TRAINING_MODULES], capture_output=True, text=True,
                       timeout=timeout_s, stdin=subprocess.DEVNULL)
    return json.loads(p.stdout.strip().splitlines()[-1])


def check_training_stack(ctx: Context, timeout_s: float = 300.0) -> Check:
    """With learning enabled, the stack is imported (a subprocess; tens of seconds on a busy
    machine); otherwise only its installed versions are read, and a missing stack is no fault."""
    learning = ctx.learning
    fix = "run `./install.sh --train` (or --gpu on CUDA)"
    try:
        versions = _imported_versions(timeout_s) if learning else _installed_versions()
    except (subprocess.TimeoutExpired, ValueError, IndexError) as e:
        return Check("training_stack", Status.FAIL, f"the import probe failed: {e}", fix,
                     {"versions": {}, "missing": list(TRAINING_MODULES), "imported": True})
    missing = [m for m in TRAINING_MODULES if not versions.get(m)]
    details = {"versions": versions, "missing": missing, "imported": learning}
    if not missing:
        return Check("training_stack", Status.OK, ", ".join(f"{m} {v}" for m, v in versions.items()), None, details)
    message = f"{'not importable' if learning else 'not installed'}: {', '.join(missing)}"
    if learning:
        return Check("training_stack", Status.FAIL, message, fix, details)
    return Check("training_stack", Status.OK, f"{message} (needed only to train; learning is not configured)", None,
                 details)


def check_ollama(ctx: Context, timeout_s: float = 2.0) -> Check:
    """`GET /api/version` of the Ollama that deploy uses ([deploy] ollama_host), on this machine only."""
    url = ctx.settings.deploy.host()
    if not ctx.learning:
        return Check("ollama", Status.SKIP, "not checked: learning is not configured ([learning] in config.toml)", None,
                     {"url": url, "version": None})
    if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return Check("ollama", Status.SKIP, f"not checked: {url} is not on this machine (doctor asks only "
                     "127.0.0.1)", None, {"url": url, "version": None})
    from cc_capture.deploy.server import DeployError, OllamaServer  # the client deploy uses, and its faults

    try:
        with OllamaServer(url, timeout_s) as server:
            version = server.version()
    except DeployError as e:
        return Check("ollama", Status.FAIL, e.detail, e.fix, {"url": url, "version": None})
    return Check("ollama", Status.OK, f"Ollama {version} at {url}", None, {"url": url, "version": version})


CHECKS: tuple[Callable[[Context], Check], ...] = (
    check_config, check_hooks, check_daemon, check_journal, check_database, check_disk, check_file_modes,
    check_transcripts, check_claude_version, check_training_stack, check_ollama,
)


def run(paths: Paths | None = None) -> list[Check]:
    """Every check, in order; a check that breaks is itself reported as failed."""
    paths = paths or Paths()
    try:
        settings, config_error = load_settings(paths), None
    except ConfigError as e:
        settings, config_error = Settings(), str(e)
    ctx = Context(paths, settings, config_error, time.time())
    results = []
    for check in CHECKS:
        try:
            results.append(check(ctx))
        except Exception as e:  # a doctor that tracebacks helps no one: report the check itself
            name = check.__name__.removeprefix("check_")
            results.append(Check(name, Status.FAIL, f"the check itself failed: {type(e).__name__}: {e}",
                                 "report this as a cc-capture bug"))
    return results


def report(checks: list[Check]) -> dict[str, Any]:
    """The `--json` form: `ok` is false when any check failed."""
    return {"ok": all(c.status is not Status.FAIL for c in checks), "checks": [c.as_dict() for c in checks]}
