"""Importing many sessions at once (`ccd import`, the daemon's backfill): worker processes read,
parse and redact chunks of the files a bounded distance ahead while this process, the store's
only writer, runs the importer over them in order: sessions go in one SAVEPOINT each, inside
transactions committed every COMMIT_EVERY_S. With `rescan`, sessions an older redactor stored
are imported again from their first line.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections import deque
from contextlib import contextmanager, nullcontext
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from cc_capture import merge_policy, redact
from cc_capture.claude_format import DEFAULT_MAX_OUTPUT_CHARS
from cc_capture.transcripts.discovery import SessionFiles, discover, transcript_files, unread
from cc_capture.transcripts.importer import Importer, ImportStats
from cc_capture.transcripts.parser import CHUNK_BYTES, Chunk, decode_chunk, parse_chunk, parse_chunks_encoded

log = logging.getLogger("ccd.import")


class _Ahead:
    """One chunk handed to the worker processes: parse_chunk's arguments, and once submitted the
    future of the batch it went in with and its place there. Before it is taken, `meanwhile` (if
    given) is called with that future: what the writer does until it is done."""

    def __init__(self, args: tuple, meanwhile: Callable[[Future], None] | None = None) -> None:
        self.args = args
        self.meanwhile = meanwhile
        self.batch: Future | None = None
        self.index = 0

    def chunk(self) -> Chunk:
        if self.batch is not None:
            if self.meanwhile is not None:
                self.meanwhile(self.batch)
            try:
                parsed = self.batch.result()[self.index]
            except BrokenProcessPool:
                log.warning("an import worker died; reading %s here", self.args[0])
            else:
                return decode_chunk(parsed)
        return parse_chunk(*self.args)


@dataclass
class Prefetched:
    """A file's chunks from `start` on, parsed ahead by worker processes."""

    start: int
    ahead: list[_Ahead]

    def chunks(self) -> Iterator[Chunk]:
        for item in self.ahead:
            yield item.chunk()


# Below this many bytes to read, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 16 << 20
# A bulk import commits at least this often (live capture waits for the write lock meanwhile).
COMMIT_EVERY_S = 0.25
# SQLite's page cache while an import with workers writes (KiB; SQLite's default is 2 MiB): its
# transactions change more pages than that, which the default spills into the write-ahead log
# before the commit writes them again, and reads back. With 16 MiB, on the 156 MB footprint
# corpus, 35% fewer page writes and 70% fewer page reads, about 0.1 s less CPU in the writer, for
# up to 16 MB more memory while it imports. Durability is unchanged. Not in one process (the
# daemon's backfill): the idle daemon keeps its memory.
IMPORT_CACHE_KIB = 16 << 10


def may_need_workers(paths: Iterable[Path], offsets: dict[str, int] | None = None) -> bool:
    """Whether importing these files and folders could be worth worker processes: they hold
    PARALLEL_MIN_BYTES of transcripts not read yet (past their stored read `offsets`, as
    `imported_offsets` gives them, or from their start; counted until they do)."""
    offsets = offsets or {}
    total = 0
    for path in paths:
        for f in transcript_files(path):
            try:
                size = f.stat().st_size
            except OSError:  # gone meanwhile: the import will not read it either
                continue
            start = offsets.get(str(f), 0)
            total += size - (start if start <= size else 0)  # shorter than its offset: rewritten, read again
            if total >= PARALLEL_MIN_BYTES:
                return True
    return False


def imported_offsets(db_path: Path) -> dict[str, int]:
    """The read offsets of the transcripts imported into this database (`transcript_offsets`), read
    without opening the store (no migration, nothing written): none where there is no database yet
    or it cannot be read."""
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT path, offset FROM transcript_offsets"))
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def default_workers() -> int:
    """Worker processes for `ccd import`: one per core but the one this process (the store's only
    writer, and at most 4 workers' match) keeps busy; none on a single core."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def import_paths(db, paths: Iterable[Path], progress: Callable[[SessionFiles], None] | None = None,
                 workers: int = 0, max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS, rescan: bool = False) -> ImportStats:
    """Import every session under these files and folders (see `import_sessions`)."""
    return import_sessions(db, discover(paths), progress, workers, max_output_chars, rescan)


@dataclass
class ReadPlan:
    """What an import will read: the sessions read again from their start (`rescan`), and, when
    it has workers, the unread byte ranges of every file (start, stop, session folder) by session."""

    stale: set[str]
    ranges: dict[str, dict[Path, tuple[int, int, Path]]]

    def parallel(self, workers: int) -> bool:
        """Worth worker processes: below PARALLEL_MIN_BYTES starting them costs more than they save."""
        unread_bytes = sum(stop - start for files in self.ranges.values() for start, stop, _ in files.values())
        return workers >= 1 and unread_bytes >= PARALLEL_MIN_BYTES


def plan_reads(db, sessions: dict[str, SessionFiles], workers: int = 0, rescan: bool = False) -> ReadPlan:
    stale = stale_sessions(db, sessions) if rescan else set()
    ranges: dict[str, dict[Path, tuple[int, int, Path]]] = {}
    if workers >= 1:
        offsets = dict(db.execute("SELECT path, offset FROM transcript_offsets").fetchall())
        ranges = {sid: unread(files, {} if sid in stale else offsets) for sid, files in sessions.items()}
    return ReadPlan(stale, ranges)


def worker_pool(workers: int, initializer: Callable[..., None] | None = None) -> ProcessPoolExecutor:
    """Worker processes that parse and redact ahead (started fresh: `spawn`), under this process's
    e-mail policy; a caller that gives them more to do (signals) passes its own initializer, and
    then hands them this process's e-mail policy itself (`redact.configure(*redact.email_rules())`
    before they parse). They end with this process, however it ends (`_worker_start`)."""
    start = (redact.configure, *redact.email_rules()) if initializer is None else (initializer,)
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start,
                               initargs=start)


def _worker_start(initializer: Callable[..., None], *initargs) -> None:
    """A worker's start: `initializer(*initargs)`, and a thread that ends the worker once the
    process that started it has ended. A pool's workers otherwise end only when that process
    tells them to: killed (SIGTERM, SIGKILL) it never does, and they would wait for tasks forever,
    holding the output pipes of whoever ran it."""
    threading.Thread(target=_end_with_parent, name="end-with-parent", daemon=True).start()
    initializer(*initargs)


def _end_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # returns once the parent has ended (its end of a pipe closed), however it ended
        os._exit(1)


def import_sessions(db, sessions: dict[str, SessionFiles], progress: Callable[[SessionFiles], None] | None = None,
                    workers: int = 0, max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
                    rescan: bool = False, committed: Callable[[set[str]], None] | None = None,
                    plan: ReadPlan | None = None, pool: Executor | None = None,
                    stats: ImportStats | None = None,
                    meanwhile: Callable[[Future], None] | None = None) -> ImportStats:
    """Import these sessions (`discover`'s); a failing one is reported and stores nothing. With
    `workers`, that many processes (`pool`, or a `worker_pool` of its own) read, parse and redact
    the files ahead while this one assembles and stores. With `rescan`, a session whose earlier
    import was redacted by older rules (`stale_sessions`) is imported again from its first line,
    replacing what that import stored (see `forget_import`). `committed` is told, after each
    commit, the traces that the sessions it made durable changed (no later session of this import
    changes them again). `plan`: `plan_reads(db, sessions, workers, rescan)`, if made already;
    `stats`: where to count (`committed` may read it as the import goes), else new ones;
    `meanwhile(future)`: called before each chunk parsed ahead is taken, with the future that
    brings it (the caller may work until it is done: the writer is then inside its transaction)."""
    stats = stats if stats is not None else ImportStats()
    plan = plan or plan_reads(db, sessions, workers, rescan)
    stats.rescanned = len(plan.stale)
    parallel = plan.parallel(workers)
    with _writing_in_bulk(db) if parallel else nullcontext() as checkpoints:
        writer = _SessionWriter(db, stats, max_output_chars, plan.stale, committed, checkpoints)
        try:
            if parallel and pool is not None:
                _import_ahead(writer, sessions, plan.ranges, pool, workers, progress, meanwhile)
            elif parallel:
                with worker_pool(workers) as own:
                    _import_ahead(writer, sessions, plan.ranges, own, workers, progress, meanwhile)
            else:
                for sid, files in sessions.items():
                    writer.write(sid, files)
                    if progress:
                        progress(files)
        finally:
            writer.commit()
    return stats


@contextmanager
def _writing_in_bulk(db) -> Iterator[_Checkpointer]:
    """While an import with workers writes: the larger page cache (IMPORT_CACHE_KIB) and the
    checkpoints in a thread (_Checkpointer); the connection's own settings are back afterwards,
    also when the import fails (the connection may live on: the daemon's)."""
    (cache,) = db.execute("PRAGMA cache_size").fetchone()
    db.execute(f"PRAGMA cache_size={-IMPORT_CACHE_KIB}")
    checkpoints = _Checkpointer(db)
    try:
        yield checkpoints
    finally:
        try:
            checkpoints.close()
        finally:
            db.execute(f"PRAGMA cache_size={cache}")


class _Checkpointer:
    """Copies a bulk import's write-ahead log into the database from a thread of its own, after
    each of its commits, in place of SQLite's automatic checkpoint, which the committing
    connection runs itself and so made the writer wait for the checkpoint's two fsyncs (0.6-0.7 s
    in all on the footprint corpus on this machine's disk). The checkpoint is the same (passive:
    it waits for no reader or writer) at about the same points, so the same data is made durable
    when it was before; the writer goes on meanwhile (the sqlite3 module lets other threads run
    while SQLite works)."""

    def __init__(self, db) -> None:
        (path,) = [row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main"]
        self.db = db
        (self.every,) = db.execute("PRAGMA wal_autocheckpoint").fetchone()
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.due = threading.Event()
        self.closing = False
        self.done = 0  # checkpoints run
        db.execute("PRAGMA wal_autocheckpoint=0")
        self.thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self.thread.start()

    def committed(self) -> None:
        self.due.set()

    def _run(self) -> None:
        while True:
            self.due.wait()
            self.due.clear()
            last = self.closing  # read first: this checkpoint then covers every commit before close()
            try:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self.done += 1
            except sqlite3.Error:  # the next one, or the writer's own after close, copies what this did not
                log.warning("a checkpoint of the import's write-ahead log failed", exc_info=True)
            if last:
                return

    def close(self) -> None:
        """A last checkpoint, then the writer checkpoints on its own again (`wal_autocheckpoint`
        as it was)."""
        self.closing = True
        self.due.set()
        self.thread.join()
        self.conn.close()
        self.db.execute(f"PRAGMA wal_autocheckpoint={self.every}")


def stale_sessions(db, sessions: dict[str, SessionFiles]) -> set[str]:
    """Of these sessions (their transcripts on disk), those holding a row their import wrote with
    older redaction rules than this cc-capture's (`redact.VERSION`)."""
    stale = set()
    for table in ("traces", "tool_calls", "subagents"):
        stale |= {sid for (sid,) in db.execute(
            f"SELECT DISTINCT session_id FROM {table} WHERE source = 'transcript' AND redactor_version < ?",
            (redact.VERSION,))}
    stale |= {sid for (sid,) in db.execute(
        "SELECT DISTINCT c.session_id FROM reasoning r JOIN tool_calls c USING (tool_use_id) "
        "WHERE r.redactor_version < ?", (redact.VERSION,))}
    return stale & set(sessions)


def forget_import(conn, session_id: str, files: SessionFiles | None = None) -> None:
    """Remove what importing this session stored (`merge_policy.forget_transcript_side`), and the
    read offsets of these files, so it is imported afresh."""
    merge_policy.forget_transcript_side(conn, session_id)
    if files is not None:
        conn.executemany("DELETE FROM transcript_offsets WHERE path = ?",
                         [(str(p),) for p in ([files.main] if files.main else []) + files.agents])


def _import_ahead(writer: _SessionWriter, sessions: dict[str, SessionFiles],
                  ranges: dict[str, dict[Path, tuple[int, int, Path]]], pool: Executor, workers: int,
                  progress: Callable[[SessionFiles], None] | None,
                  meanwhile: Callable[[Future], None] | None = None) -> None:
    """Sessions in order, their chunks parsed by worker processes a bounded distance ahead."""
    window = (2 * workers + 1) * CHUNK_BYTES  # bytes read ahead: bounds the memory they hold
    queue: deque = deque()  # (session id, files, prefetched by path, bytes)
    unsent: list[_Ahead] = []
    unsent_bytes = ahead_bytes = 0

    def send() -> None:
        """Hand the chunks not sent yet to a worker, as one batch (one round trip)."""
        nonlocal unsent, unsent_bytes
        if not unsent:
            return
        try:
            batch = pool.submit(parse_chunks_encoded, [item.args for item in unsent])
        except BrokenProcessPool:  # a worker died: what is left is parsed here
            batch = None
        for i, item in enumerate(unsent):
            item.batch, item.index = batch, i
        unsent, unsent_bytes = [], 0

    def import_first() -> None:
        nonlocal ahead_bytes
        sid, files, prefetched, size = queue.popleft()
        if unsent:
            send()
        writer.write(sid, files, prefetched)
        ahead_bytes -= size
        if progress:
            progress(files)

    for sid, files in sessions.items():
        prefetched = {}
        for path, (start, stop, session_dir) in ranges[sid].items():
            items = [_Ahead((path, at, min(at + CHUNK_BYTES, stop), session_dir, writer.max_output_chars), meanwhile)
                     for at in range(start, stop, CHUNK_BYTES)]
            prefetched[path] = Prefetched(start, items)
            for item in items:
                unsent.append(item)
                unsent_bytes += item.args[2] - item.args[1]
                if unsent_bytes >= CHUNK_BYTES:
                    send()
        size = sum(stop - start for start, stop, _ in ranges[sid].values())
        queue.append((sid, files, prefetched, size))
        ahead_bytes += size
        while ahead_bytes >= window:
            import_first()
    while queue:
        import_first()


class _SessionWriter:
    """Stores sessions one SAVEPOINT each, inside transactions of up to COMMIT_EVERY_S seconds:
    a failing session is recorded and rolled back alone, and a bulk import does not pay a commit
    (and the rewrite of the same index pages) per session, nor hold the write lock for long."""

    def __init__(self, db, stats: ImportStats, max_output_chars: int, forget: set[str] = frozenset(),
                 committed: Callable[[set[str]], None] | None = None,
                 checkpoints: _Checkpointer | None = None) -> None:
        self.conn = db.conn
        self.checkpoints = checkpoints
        self.stats = stats
        self.max_output_chars = max_output_chars
        self.forget = forget  # sessions whose earlier import is replaced (in the same savepoint)
        self.began: float | None = None
        self.committed = committed
        self.touched: set[str] = set()  # traces changed by the sessions of the open transaction

    def write(self, session_id: str, files: SessionFiles, prefetched: dict[Path, Prefetched] | None = None) -> None:
        if self.began is None:
            self.conn.execute("BEGIN IMMEDIATE")
            self.began = time.monotonic()
        self.conn.execute("SAVEPOINT session")
        try:
            if session_id in self.forget:
                forget_import(self.conn, session_id, files)
            importer = Importer(self.conn, self.stats, self.max_output_chars)
            importer.import_session(files, prefetched)
            self.touched |= importer.touched
        except Exception as e:  # a bug on one session must not stop the others: report it
            self.conn.execute("ROLLBACK TO session")
            log.exception("import of session %s failed", session_id)
            self.stats.failed[session_id] = f"{type(e).__name__}: {e}"
        except BaseException:  # interrupted: keep the sessions already done (their signals wait for the next pass)
            self.conn.execute("ROLLBACK TO session")
            self.conn.execute("RELEASE session")
            self.committed = None
            self.commit()
            raise
        self.conn.execute("RELEASE session")
        if time.monotonic() - self.began >= COMMIT_EVERY_S:
            self.commit()

    def commit(self) -> None:
        if self.began is not None:
            self.conn.execute("COMMIT")
            self.began = None
            if self.checkpoints is not None:
                self.checkpoints.committed()
            touched, self.touched = self.touched, set()
            if self.committed and touched:
                self.committed(touched)
