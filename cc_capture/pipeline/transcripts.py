"""Import transcripts and compute their signals: `ccd import`, and the daemon's backfill.

Signals are computed as the import goes, after each of its commits, for the closed traces the
sessions just committed changed (no later session of the import changes them again). With worker
processes reading ahead, the importing process would otherwise wait for them part of the time:
the signals fill that time, so the whole command costs little more than the import alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from cc_capture.config import Settings
from cc_capture.signals.runner import ComputeResult, compute, pending
from cc_capture.store import Database
from cc_capture.transcripts.bulk import import_sessions
from cc_capture.transcripts.discovery import SessionFiles
from cc_capture.transcripts.importer import ImportStats


@dataclass
class TranscriptImport:
    stats: ImportStats
    signals: ComputeResult = field(default_factory=ComputeResult)

    def add(self, signals: ComputeResult) -> None:
        self.signals.computed += signals.computed
        self.signals.qualifies += signals.qualifies
        self.signals.failed += signals.failed


def import_transcripts(db: Database, sessions: dict[str, SessionFiles], settings: Settings, workers: int = 0,
                       rescan: bool = False, progress: Callable[[SessionFiles], None] | None = None,
                       signals_progress: Callable[[int], Callable[[], None]] | None = None) -> TranscriptImport:
    """Import these sessions (transcripts.bulk, with `workers` processes reading ahead, and
    `rescan` to import again sessions redacted by older rules), computing
    the signals of the traces they close as it goes, then those of any other queued trace.
    `signals_progress(n)`, if given, is called before those last n are computed and returns what to
    call after each."""
    done = TranscriptImport(ImportStats())

    def committed(traces: set[str]) -> None:
        done.add(compute(db, pending(db, traces), settings.gates))

    done.stats = import_sessions(db, sessions, progress, workers, settings.capture.max_output_chars, rescan,
                                 committed)
    rest = pending(db)
    done.add(compute(db, rest, settings.gates, signals_progress(len(rest)) if signals_progress else None))
    return done
