"""Import transcripts and compute their signals: `ccd import`, and the daemon's backfill.

Signals are computed as the import goes, after each of its commits, for the closed traces the
sessions just committed changed (no later session of the import changes them again). With two
or more worker processes, extraction runs in them too (reading the committed rows on their own
connections) and this process, the store's only writer, stores what they return at its next
commits: the cores share parsing, redaction and signals, and the writer does little more than
assemble and write. With one worker (two cores) this process computes them while the worker
parses, which balances the two better.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cc_capture import redact, store
from cc_capture.config import GateSettings, Settings
from cc_capture.signals import runner
from cc_capture.signals.runner import ComputeResult, Derived, compute, pending
from cc_capture.store import Database
from cc_capture.transcripts import bulk
from cc_capture.transcripts.discovery import SessionFiles
from cc_capture.transcripts.importer import ImportStats

# Traces handed to a signals worker at once: enough to amortise the round trip, few enough that
# the workers stay busy while the import goes on.
SIGNALS_BATCH = 32


@dataclass
class TranscriptImport:
    stats: ImportStats
    signals: ComputeResult = field(default_factory=ComputeResult)


_worker_db: Database | None = None
_worker_gates: GateSettings | None = None


def _open_worker(db_path: str, gates: dict, *email_rules) -> None:
    """A worker that parses and redacts (`bulk.worker_pool`'s, under the importing process's e-mail
    policy) and computes signals from its own connection to the store."""
    global _worker_db, _worker_gates
    redact.configure(*email_rules)
    _worker_db = store.connect(Path(db_path), migrate=False)
    _worker_gates = GateSettings(**gates)


def _derive(trace_ids: list[str]) -> list[Derived]:
    assert _worker_db is not None and _worker_gates is not None
    return runner.derive(_worker_db, trace_ids, _worker_gates)


class SignalWorkers:
    """Worker processes that parse ahead for the import and compute signals of what it committed;
    this process (the writer) stores those in its transactions."""

    def __init__(self, db: Database, gates: GateSettings, workers: int) -> None:
        (path,) = [row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main"]
        self.db = db
        self.pool = bulk.worker_pool(workers, _open_worker, (path, gates.model_dump(), *redact.email_rules()))
        self.running: list[Future] = []

    def submit(self, trace_ids: list[str]) -> None:
        if trace_ids:
            with store.transaction(self.db) as conn:
                runner.settle_sessions(conn, trace_ids)
        for start in range(0, len(trace_ids), SIGNALS_BATCH):
            self.running.append(self.pool.submit(_derive, trace_ids[start : start + SIGNALS_BATCH]))

    def store_done(self, wait: bool = False) -> ComputeResult:
        """Store what the workers finished (everything, waiting for it, with `wait`), in one transaction."""
        done = self.running if wait else [f for f in self.running if f.done()]
        self.running = [f for f in self.running if f not in done]
        result = ComputeResult()
        if done:
            with store.transaction(self.db) as conn:
                for f in done:
                    result.add(runner.store_derived(conn, f.result()))
        return result

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def import_transcripts(db: Database, sessions: dict[str, SessionFiles], settings: Settings, workers: int = 0,
                       rescan: bool = False, progress: Callable[[SessionFiles], None] | None = None,
                       signals_progress: Callable[[int], Callable[[], None]] | None = None) -> TranscriptImport:
    """Import these sessions (transcripts.bulk, with `workers` processes reading ahead and, from two
    on, computing signals, and `rescan` to import again sessions redacted by older rules), computing
    the signals of the traces they close as it goes, then those of any other queued trace.
    `signals_progress(n)`, if given, is called before those last n are computed and returns what to
    call after each."""
    done = TranscriptImport(ImportStats())
    plan = bulk.plan_reads(db, sessions, workers, rescan)
    # Signals go to the workers when there are several (with one, on two cores, this process computing
    # them while the worker parses keeps both cores busier than handing the worker both), and only
    # for an import worth workers at all (bulk.PARALLEL_MIN_BYTES).
    signals = SignalWorkers(db, settings.gates, workers) if plan.parallel(workers) and workers >= 2 else None

    def committed(traces: set[str]) -> None:
        if signals is None:
            done.signals.add(compute(db, pending(db, traces), settings.gates))
        else:
            done.signals.add(signals.store_done())
            signals.submit(pending(db, traces))

    try:
        done.stats = bulk.import_sessions(db, sessions, progress, workers, settings.capture.max_output_chars, rescan,
                                          committed, plan, signals.pool if signals else None)
        if signals is not None:
            done.signals.add(signals.store_done(wait=True))
    finally:
        if signals is not None:
            signals.close()
    rest = pending(db)
    done.signals.add(compute(db, rest, settings.gates, signals_progress(len(rest)) if signals_progress else None))
    return done
