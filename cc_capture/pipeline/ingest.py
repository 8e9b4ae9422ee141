"""One ingest pass: the journal's complete records, where new sessions ran (git), the transcripts of
the sessions they touched, then the signals of the traces that closed.

The daemon runs `ingest_pass` in its loop (holding the home lock for its lifetime, and keeping a
session's transcript "hot" a while after its last event); `ccd ingest`, the tests and the
benchmarks run `ingest_once`, which takes the home lock for one pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cc_capture import homelock, store
from cc_capture.config import GateSettings, Settings
from cc_capture.gitinfo import GitInfo, GitState, probe
from cc_capture.ingest.ingester import Ingester, PassResult
from cc_capture.paths import Paths
from cc_capture.signals.runner import ComputeResult, compute_pending
from cc_capture.transcripts.importer import sync_sessions


LOCATE_WITHIN_S = 600.0


@dataclass
class IngestSummary:
    journal: PassResult
    signals: ComputeResult
    journal_s: float  # seconds spent on the journal and transcripts, then on signals
    signals_s: float


def ingest_pass(ingester: Ingester, gates: GateSettings,
                transcripts: Callable[[set[Path]], set[Path]] | None = None) -> IngestSummary:
    """Ingest the journal, read the transcripts of the sessions it touched (or those `transcripts`
    returns when given them), then compute the signals of traces that closed."""
    t0 = time.perf_counter()
    journal = ingester.run_pass()
    locate_sessions(ingester.db)
    sync_sessions(ingester.db, journal.transcripts if transcripts is None else transcripts(journal.transcripts),
                  ingester.settings.max_output_chars)
    t1 = time.perf_counter()
    signals = compute_pending(ingester.db, gates)
    return IngestSummary(journal, signals, t1 - t0, time.perf_counter() - t1)


def locate_sessions(db: store.Database, now: float | None = None) -> int:
    """Record where each newly started session ran (its folder's git repository, commit, dirty tree),
    outside the ingest transaction and with git's time limit. A SessionStart older than
    `LOCATE_WITHIN_S` (a backlog, a database from before this) is recorded `unknown`: the folder
    may have moved on since. Returns how many sessions were looked at."""
    rows = store.sessions_to_locate(db)
    now = time.time() if now is None else now
    found = [(sid, probe(cwd) if now - (started or now) <= LOCATE_WITHIN_S
              else GitInfo(GitState.UNKNOWN, reason="the session started too long ago")) for sid, cwd, started in rows]
    if found:
        with store.transaction(db) as conn:
            for sid, info in found:
                store.set_git_state(conn, sid, info.state.value, info.root, info.commit, info.dirty, info.branch)
    return len(found)


def ingest_once(paths: Paths, settings: Settings) -> IngestSummary:
    """One pass under the home lock (homelock.HomeBusy when the daemon or another pass holds it)."""
    with homelock.hold(paths):
        db = store.connect(paths.db)
        try:
            return ingest_pass(Ingester(paths, settings.capture, db), settings.gates)
        finally:
            db.conn.close()
