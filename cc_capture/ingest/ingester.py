"""Journal → store: read complete records, redact, assemble, commit rows and marks together.

Exactly-once without coordination: each record's rows and its done-mark (name, and the mtime and
size of the bytes actually read) commit in one transaction; the file is deleted only after the commit. A restart that finds a
file whose mark is already committed deletes it instead of ingesting it twice. A bad record
(malformed, truncated, non-UTF-8, too large) is quarantined with its reason and never holds
up the records after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from cc_capture import journal, store
from cc_capture.claude_format import shorten_strings
from cc_capture.config import CaptureSettings, Paths
from cc_capture.health import disk_space
from cc_capture.ingest.assemble import Assembler
from cc_capture.ingest.events import HookEvent, decode, with_lone_surrogates_replaced
from cc_capture.redact import redact_payload, redact_text
from cc_capture.store import Database, transaction

SAMPLE_CHARS = 4096


class Quarantined(Exception):
    """A record that cannot be ingested as it is; the message is the reason shown to the user."""


@dataclass
class PassResult:
    ingested: int = 0
    quarantined: int = 0
    waiting: int = 0  # records still being written
    transcripts: set[Path] = field(default_factory=set)  # sessions' transcripts to (re-)read


class Ingester:
    def __init__(self, paths: Paths, settings: CaptureSettings, db: Database) -> None:
        self.paths = paths
        self.settings = settings
        self.db = db
        self.journal_dir = str(paths.journal)
        self.db_identity = store.file_identity(paths.db)  # the file `db` was opened on, see _check_db
        self.disk_full: list[list[float]] = []  # [first, last] times the journal's disk was seen full

    def _watch_disk(self, now: float) -> None:
        """Remember when the journal's disk was full: a record its hook could not finish then is
        quarantined saying so, rather than "hook killed?"."""
        space = disk_space(self.paths.journal)
        if space is None or not space.full:
            return
        if self.disk_full and now - self.disk_full[-1][1] < 60:
            self.disk_full[-1][1] = now
        else:
            self.disk_full = self.disk_full[-99:] + [[now, now]]

    def _cut_short_reason(self, rec: journal.Record) -> str:
        """Why a record has no end marker: the disk was full when its hook wrote, else unknown."""
        what = "empty: the hook wrote nothing" if not rec.payload else "truncated: no end marker"
        at = rec.file.received_at
        for first, last in self.disk_full:
            if first - 5 <= at <= last + 5:
                return (f"{what} after {self.settings.incomplete_grace_s:.0f}s: the disk was full when its hook "
                        f"wrote it (full from {store.iso(first)} to at least {store.iso(last)}; the event is lost)")
        return f"{what} after {self.settings.incomplete_grace_s:.0f}s (hook killed, or its disk full?)"

    def _check_db(self) -> None:
        """Refuse to go on (and above all to delete journal records) once the database file was
        deleted or replaced: rows committed into a deleted file are lost with it."""
        if store.file_identity(self.paths.db) != self.db_identity:
            raise store.DatabaseGone(f"the database {self.paths.db} was deleted or replaced while open")

    def run_pass(self) -> PassResult:
        """Ingest every complete record in the journal, in batches; return what happened."""
        self._check_db()
        self._watch_disk(time.time())
        self._settle_done()
        result = PassResult()
        files = journal.list_files(self.paths.journal)
        for start in range(0, len(files), self.settings.batch_events):
            self._ingest_batch(files[start : start + self.settings.batch_events], result)
        return result

    # ------------------------------------------------------------ internals

    def _settle_done(self) -> None:
        """Finish what a crash interrupted: delete files already committed, then forget their marks."""
        marks = self.db.execute("SELECT name, mtime_ns, size FROM journal_done").fetchall()
        if not marks:
            return
        present = {f.name: f for f in journal.list_files(self.paths.journal)}
        for name, mtime_ns, size in marks:
            f = present.get(name)
            if f is not None and (f.mtime_ns, f.size) == (mtime_ns, size):
                journal.remove(self.paths.journal, name)
        with transaction(self.db) as conn:
            conn.executemany("DELETE FROM journal_done WHERE name = ?", [(m[0],) for m in marks])

    def _ingest_batch(self, files: list[journal.JournalFile], result: PassResult) -> None:
        now = time.time()
        records = []
        for f in files:
            rec = journal.read(self.journal_dir, f, self.settings.max_read_bytes)
            if rec is None:
                continue
            if not rec.complete and now - rec.file.received_at < self.settings.incomplete_grace_s:
                result.waiting += 1
                continue
            records.append(rec)
        if not records:
            return
        done = []
        with transaction(self.db) as conn:
            assembler = Assembler(conn, self.settings.max_output_chars)
            for rec in records:
                conn.execute("SAVEPOINT record")
                try:
                    self._ingest_record(conn, assembler, rec, now, result)
                    result.ingested += 1
                except Exception as e:  # one record's failure must not hold up the ones after it
                    conn.execute("ROLLBACK TO record")
                    assembler.flush()  # keep what earlier records deferred; its caches may be stale now
                    assembler = Assembler(conn, self.settings.max_output_chars)
                    reason = str(e) if isinstance(e, Quarantined) else f"ingest error: {type(e).__name__}: {e}"
                    self._quarantine(conn, rec, reason, now)
                    result.quarantined += 1
                conn.execute("RELEASE record")
                done.append(rec.file.name)
            assembler.flush()
            conn.executemany(
                "INSERT OR REPLACE INTO journal_done (name, mtime_ns, size) VALUES (?, ?, ?)",
                [(r.file.name, r.file.mtime_ns, r.file.size) for r in records],
            )
        self._check_db()
        for name in done:
            journal.remove(self.journal_dir, name)
        with transaction(self.db) as conn:
            conn.executemany("DELETE FROM journal_done WHERE name = ?", [(n,) for n in done])

    def _ingest_record(self, conn: Any, assembler: Assembler, rec: journal.Record, now: float, result: PassResult) -> None:
        size = rec.file.size
        if rec.payload is None:
            raise Quarantined(f"record of {size} bytes is over max_read_bytes ({self.settings.max_read_bytes}); not read")
        if not rec.complete:
            raise Quarantined(self._cut_short_reason(rec))
        raw = rec.payload
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Quarantined(f"not UTF-8: invalid byte at offset {e.start}") from None
        try:
            decoded = msgspec.json.decode(raw)
        except msgspec.DecodeError as e:
            decoded = with_lone_surrogates_replaced(raw)
            if decoded is None:
                raise Quarantined(f"malformed JSON: {e}") from None
            raw = msgspec.json.encode(decoded)
        if not isinstance(decoded, dict) or not isinstance(decoded.get("hook_event_name"), str):
            raise Quarantined("not a hook payload: no hook_event_name")
        oversized = len(raw) > self.settings.max_event_bytes
        if oversized:
            decoded = shorten_strings(decoded, self.settings.max_output_chars)
            raw = msgspec.json.encode(decoded)
        decoded, clean = redact_payload(raw, decoded)
        try:
            ev: HookEvent = decode(clean)
        except msgspec.ValidationError as e:
            raise Quarantined(f"unexpected field type: {e}") from None
        ts = rec.file.received_at
        trace_id = assembler.apply(ev, ts)
        conn.execute(
            "INSERT INTO events (journal_name, received_at, ingested_at, event, session_id, prompt_id, trace_id, "
            "tool_use_id, agent_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec.file.name, ts, now, ev.hook_event_name, ev.session_id, ev.prompt_id, trace_id, ev.tool_use_id,
             ev.agent_id, clean.decode()),
        )
        if oversized:
            # Kept, with long strings cut; also listed in quarantine so the loss is visible.
            self._quarantine(conn, rec, f"oversized: {size} bytes > max_event_bytes "
                             f"({self.settings.max_event_bytes}); stored with long strings cut", now, sample=False)
            result.quarantined += 1
        if ev.transcript_path:
            result.transcripts.add(Path(ev.transcript_path))

    def _quarantine(self, conn: Any, rec: journal.Record, reason: str, now: float, sample: bool = True) -> None:
        text = None
        if sample and rec.payload is not None:
            # Redact a wider window, then cut: a secret straddling the cut is already replaced.
            text = redact_text(rec.payload[: SAMPLE_CHARS * 16].decode("utf-8", errors="replace"))[:SAMPLE_CHARS]
        conn.execute(
            "INSERT INTO quarantine (journal_name, reason, size, received_at, quarantined_at, sample) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (rec.file.name, reason, rec.file.size, rec.file.received_at, now, text),
        )
