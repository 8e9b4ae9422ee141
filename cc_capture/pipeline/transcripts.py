"""Import transcripts and compute their signals: `ccd import`, and the daemon's backfill.

Signals are computed as the import goes, after each of its commits, for the closed traces the
sessions just committed changed (no later session of the import changes them again). An import
with worker processes shares them out (`SignalWorkers`): the committed traces wait in a queue,
from which a worker is handed a batch whenever it has at most one task unfinished, chunks to
parse included (it reads the committed rows on its own connection), and from which this process,
the store's only writer, computes a few at a time whenever it would otherwise wait for a chunk
its workers are still parsing. A chunk so waits behind one batch at most, the writer never goes
off computing while its workers run out of chunks to parse, and neither side idles while signals
wait, whatever the core count. It
stores what was computed at its next commits, and at the end works through the queue with the
workers (figures: README, "Transcripts: backfill and mirroring").

The signals stack (`signals.runner`: the phrase patterns, the classifier; 0.17 s of loading) is
imported, with workers, only once the first chunks are handed to them (`SignalWorkers.meanwhile`,
while the writer waits for the first): their parsing then overlaps its loading instead of
following it.
"""

from __future__ import annotations

import logging
from collections import deque
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
    from cc_capture.signals.runner import ComputeResult, Derived

log = logging.getLogger("ccd.import")

# Traces handed to a signals worker at once: enough to amortise the round trip, few enough that
# the workers stay busy while the import goes on.
SIGNALS_BATCH = 32
# Signals go to the workers while fewer tasks than this per worker are unfinished in their pool
# (chunks to parse included): one each works on and one waiting behind it, so a worker never
# idles between the writer's looks, and a chunk waits behind one batch at most (the writer
# computes from the queue meanwhile). With one (signals only to an idle worker) the writer
# computed more of them itself: 4.31 s of its own CPU against 3.99 s, wall 4.77 s against
# 4.54 s (--distinct-text corpus of benchmarks/footprint.py, medians of 4 alternated; two gave
# no more: 4.28 s against 4.24 s).
TASKS_PER_WORKER = 2
# Traces the writer computes at once while it waits for a chunk: it looks again after each few, so
# a chunk that arrives meanwhile waits little.
WAITING_BATCH = 8


@dataclass
class TranscriptImport:
    stats: ImportStats
    signals: ComputeResult


class SignalWorkers:
    """Worker processes that parse ahead for the import and share the signals of what it committed
    with this process (the writer), which stores what is computed in its transactions."""

    def __init__(self, db: Database, gates: GateSettings, workers: int) -> None:
        (path,) = [row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main"]
        self.db = db
        self.gates = gates
        self.workers = workers
        setup = import_worker.Setup(path, gates.model_dump(), redact.email_rules())
        self.pool = import_worker.Workers(import_worker.pool(workers), setup)  # started ahead by `ccd import`, or now
        self.queued: deque[str] = deque()  # committed traces, their sessions settled, that nobody computes yet
        self.running: list[tuple[Future, list[str]]] = []  # batches handed out, with their traces
        self.derived: list[list[Derived]] = []  # computed here, not stored yet
        self.failed_here = False  # computing while waiting failed once: not tried again

    def share(self, trace_ids: list[str]) -> ComputeResult:
        """Queue the signals of these just-committed traces (their sessions' origin settled first,
        as `runner.compute` does), hand batches to idle workers, and store what was computed
        meanwhile (returned)."""
        from cc_capture.signals import runner

        if trace_ids:
            with store.transaction(self.db) as conn:
                runner.settle_sessions(conn, trace_ids)
        self.queued.extend(trace_ids)
        result = self.store_done()
        self.hand_out()
        return result

    def hand_out(self, size: int | None = None) -> None:
        """Batches from the queue to the workers while fewer than TASKS_PER_WORKER tasks each are
        unfinished in their pool, chunks to parse included. A worker that died leaves its batch to
        this process."""
        while self.queued and self.pool.unfinished() < TASKS_PER_WORKER * self.workers:
            batch = self._take(size or SIGNALS_BATCH)
            try:
                self.running.append((self.pool.submit(import_worker.derive, batch), batch))
            except BrokenProcessPool:
                self.queued.extendleft(reversed(batch))
                return

    def meanwhile(self, chunk: Future) -> None:
        """While the writer waits for this chunk its workers parse: queued signals computed here,
        a few at a time, until it is there (read only: the writer is inside its transaction; they
        are stored at the next commit)."""
        from cc_capture.signals import runner

        self.hand_out()
        while self.queued and not chunk.done() and not self.failed_here:
            batch = self._take(WAITING_BATCH)
            try:
                self.derived.append(runner.derive(self.db, batch, self.gates))
            except Exception:  # not the session being imported's failure: left to `finish`, which says what failed
                log.warning("signals could not be computed while waiting; left to the end", exc_info=True)
                self.queued.extendleft(reversed(batch))
                self.failed_here = True

    def _take(self, n: int) -> list[str]:
        return [self.queued.popleft() for _ in range(min(n, len(self.queued)))]

    def store_done(self, wait: bool = False) -> ComputeResult:
        """Store what was computed here and what the workers finished (everything, waiting for it,
        with `wait`), in one transaction; a batch whose worker died is computed here."""
        from cc_capture.signals import runner

        finished = [wait or f.done() for f, _ in self.running]  # asked once: a batch may finish meanwhile
        done = [batch for batch, over in zip(self.running, finished) if over]
        self.running = [batch for batch, over in zip(self.running, finished) if not over]
        result = runner.ComputeResult()
        derived, lost = self.derived, []
        self.derived = []
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
        """Everything queued or handed out, stored: the queue is computed here a few at a time
        while idle workers take as few at a time from it; then the batches no worker has started
        are taken back and computed here while the workers finish theirs."""
        from cc_capture.signals import runner

        result = runner.ComputeResult()
        while self.queued:
            self.hand_out(WAITING_BATCH)  # small: neither side then waits long for the other's last
            if self.queued:
                result.add(runner.compute(self.db, self._take(WAITING_BATCH), self.gates))
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
        signals = SignalWorkers(db, settings.gates, workers)
    else:
        signals = None
        import_worker.drop_ahead()
    computed: list[ComputeResult] = []  # as the import goes

    def committed(traces: set[str]) -> None:
        from cc_capture.signals import runner  # with workers, loaded already (see above)

        if signals is None:
            computed.append(runner.compute(db, runner.pending(db, traces), settings.gates))
        else:
            computed.append(signals.share(runner.pending(db, traces)))

    try:
        bulk.import_sessions(db, sessions, progress, workers, settings.capture.max_output_chars, rescan, committed, plan,
                             signals.pool if signals else None, stats, signals.meanwhile if signals else None)
        if signals is not None:
            computed.append(signals.finish())
    finally:
        if signals is not None:
            signals.close()
    from cc_capture.signals import runner

    done = TranscriptImport(stats, runner.ComputeResult())
    for result in computed:
        done.signals.add(result)
    rest = runner.pending(db)
    tick = signals_progress(len(rest)) if signals_progress else None
    done.signals.add(runner.compute(db, rest, settings.gates, tick))
    return done
