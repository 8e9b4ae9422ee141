"""Import transcripts and compute their signals: `ccd import`, and the daemon's backfill.

Signals are computed as the import goes, after each of its commits, for the closed traces the
sessions just committed changed (no later session of the import changes them again). An import
with worker processes shares them out: this process, the store's only writer, computes a batch
itself when it has waited for its workers' chunks since its last commit (they are the slower
side) or when as many batches as workers are unfinished there; otherwise the batch goes to the
workers, which read the committed rows on their own connections between the chunks they parse.
It stores what the workers return at its next commits, and at the end computes here whatever no
worker has started yet. So the work is shared between the writer and the workers whatever the
core count (figures: README, "Transcripts: backfill and mirroring").

The signals stack (`signals.runner`: the phrase patterns, the classifier) is imported only once
the workers are started: their start-up then overlaps its 0.25 s of loading instead of following
it.
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from cc_capture import redact, store
from cc_capture.pipeline import import_worker
from cc_capture.store import Database
from cc_capture.transcripts import bulk
from cc_capture.transcripts.discovery import SessionFiles
from cc_capture.transcripts.importer import ImportStats

if TYPE_CHECKING:
    from cc_capture.config import GateSettings, Settings
    from cc_capture.signals.runner import ComputeResult

# Traces handed to a signals worker at once: enough to amortise the round trip, few enough that
# the workers stay busy while the import goes on.
SIGNALS_BATCH = 32


@dataclass
class TranscriptImport:
    stats: ImportStats
    signals: ComputeResult


class SignalWorkers:
    """Worker processes that parse ahead for the import and share the signals of what it committed
    with this process (the writer), which stores what they compute in its transactions."""

    def __init__(self, db: Database, gates: GateSettings, workers: int, stats: ImportStats | None = None) -> None:
        (path,) = [row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main"]
        self.db = db
        self.gates = gates
        self.workers = workers
        self.stats = stats  # the import's: how long the writer has waited for its workers
        self.waited_s = 0.0  # that, when signals were last shared
        setup = import_worker.Setup(path, gates.model_dump(), redact.email_rules())
        self.pool = import_worker.Workers(import_worker.pool(workers), setup)  # started ahead by `ccd import`, or now
        self.running: list[tuple[Future, list[str]]] = []  # batches handed out, with their traces

    def share(self, trace_ids: list[str]) -> ComputeResult:
        """The signals of these just-committed traces, a batch at a time: computed here now if this
        process waited for its workers since it last shared (they are behind), else to the workers
        while fewer than `workers` batches are unfinished there, else here. Returns what was stored
        meanwhile (computed here, and what the workers finished)."""
        from cc_capture.signals import runner

        result = self.store_done()
        waited = self.stats is not None and self.stats.waited_s > self.waited_s
        if self.stats is not None:
            self.waited_s = self.stats.waited_s
        for start in range(0, len(trace_ids), SIGNALS_BATCH):
            batch = trace_ids[start : start + SIGNALS_BATCH]
            if not waited and sum(not f.done() for f, _ in self.running) < self.workers:
                with store.transaction(self.db) as conn:
                    runner.settle_sessions(conn, batch)
                try:
                    self.running.append((self.pool.submit(import_worker.derive, batch), batch))
                    continue
                except BrokenProcessPool:  # a worker died: computed here
                    pass
            result.add(runner.compute(self.db, batch, self.gates))
        return result

    def store_done(self, wait: bool = False) -> ComputeResult:
        """Store what the workers finished (everything, waiting for it, with `wait`), in one
        transaction; a batch whose worker died is computed here."""
        from cc_capture.signals import runner

        finished = [wait or f.done() for f, _ in self.running]  # asked once: a batch may finish meanwhile
        done = [batch for batch, over in zip(self.running, finished) if over]
        self.running = [batch for batch, over in zip(self.running, finished) if not over]
        result = runner.ComputeResult()
        derived, lost = [], []
        for f, ids in done:
            try:
                derived.append(f.result())
            except BrokenProcessPool:
                lost.append(ids)
        if derived:
            with store.transaction(self.db) as conn:
                for d in derived:
                    result.add(runner.store_derived(conn, d))
        for ids in lost:
            result.add(runner.compute(self.db, ids, self.gates))
        return result

    def finish(self) -> ComputeResult:
        """Everything handed out, stored: the batches no worker has started are computed here while
        the workers finish theirs."""
        from cc_capture.signals import runner

        result = runner.ComputeResult()
        for f, ids in self.running:
            if f.cancel():
                result.add(runner.compute(self.db, ids, self.gates))
        self.running = [(f, ids) for f, ids in self.running if not f.cancelled()]
        result.add(self.store_done(wait=True))
        return result

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def import_transcripts(db: Database, sessions: dict[str, SessionFiles], settings: Settings, workers: int = 0,
                       rescan: bool = False, progress: Callable[[SessionFiles], None] | None = None,
                       signals_progress: Callable[[int], Callable[[], None]] | None = None) -> TranscriptImport:
    """Import these sessions (transcripts.bulk, with `workers` processes reading ahead and sharing
    the signals, and `rescan` to import again sessions redacted by older rules), computing the
    signals of the traces they close as it goes, then those of any other queued trace.
    `signals_progress(n)`, if given, is called before those last n are computed and returns what to
    call after each."""
    stats = ImportStats()
    plan = bulk.plan_reads(db, sessions, workers, rescan)
    # Workers only for an import worth them at all (bulk.PARALLEL_MIN_BYTES).
    if plan.parallel(workers):
        signals = SignalWorkers(db, settings.gates, workers, stats)
    else:
        signals = None
        import_worker.drop_ahead()
    from cc_capture.signals import runner  # once the workers start (see above)

    done = TranscriptImport(stats, runner.ComputeResult())

    def committed(traces: set[str]) -> None:
        if signals is None:
            done.signals.add(runner.compute(db, runner.pending(db, traces), settings.gates))
        else:
            done.signals.add(signals.share(runner.pending(db, traces)))

    try:
        bulk.import_sessions(db, sessions, progress, workers, settings.capture.max_output_chars, rescan, committed, plan,
                             signals.pool if signals else None, done.stats)
        if signals is not None:
            done.signals.add(signals.finish())
    finally:
        if signals is not None:
            signals.close()
    rest = runner.pending(db)
    tick = signals_progress(len(rest)) if signals_progress else None
    done.signals.add(runner.compute(db, rest, settings.gates, tick))
    return done
