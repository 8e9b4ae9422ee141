"""The SQLite store: schema, versioned migrations and the queries the CLI and daemon share.

One database file (WAL, busy timeout) written by the daemon and read by `ccd`. Times are
stored as Unix seconds (REAL) and rendered as ISO 8601 at the edges.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator

BUSY_TIMEOUT_MS = 10_000


class Origin(str, Enum):
    """Who answered in a session: Claude, or the local model inside Claude Code (never training data)."""

    CLAUDE = "claude"
    LOCAL = "local"


class Database:
    """A connection with the few conveniences the store's callers use. (sqlite-utils, used
    before, imports pandas and numpy whenever they are installed, as with the train extra:
    0.4 s and 80 MB more for every `ccd status` and for the idle daemon.)"""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executescript(self, sql: str) -> sqlite3.Cursor:
        """Several statements; inside a transaction, part of it (sqlite3's own executescript
        would commit the transaction first)."""
        if not self.conn.in_transaction:
            return self.conn.executescript(sql)
        cursor = self.conn.cursor()
        statement = ""
        for part in sql.split(";"):
            statement += part + ";"
            if sqlite3.complete_statement(statement):
                if statement.strip(" \n;"):
                    cursor.execute(statement)
                statement = ""
        if statement.strip(" \n;"):
            cursor.execute(statement)
        return cursor

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return _rows(self, sql, params)

    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def _v1(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            journal_name TEXT NOT NULL,
            received_at REAL NOT NULL,
            ingested_at REAL NOT NULL,
            event TEXT NOT NULL,
            session_id TEXT,
            prompt_id TEXT,
            trace_id TEXT,
            tool_use_id TEXT,
            agent_id TEXT,
            payload TEXT NOT NULL
        );
        CREATE INDEX events_session ON events(session_id, id);
        CREATE INDEX events_trace ON events(trace_id, id);

        CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            cwd TEXT,
            transcript_path TEXT,
            model TEXT,
            source TEXT,
            permission_mode TEXT,
            started_at REAL,
            last_event_at REAL,
            ended_at REAL,
            end_reason TEXT,
            n_compactions INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE traces (
            trace_id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            prompt_id TEXT,
            seq INTEGER NOT NULL,
            prompt TEXT,
            started_at REAL,
            ended_at REAL,
            status TEXT NOT NULL DEFAULT 'open',
            final_response TEXT,
            error TEXT,
            n_batches INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX traces_session ON traces(session_id, seq);
        CREATE INDEX traces_started ON traces(started_at);

        -- prompt ids that continue an earlier trace (a <task-notification> after a background agent)
        CREATE TABLE prompt_routes (
            prompt_id TEXT PRIMARY KEY,
            trace_id TEXT NOT NULL
        );

        CREATE TABLE tool_calls (
            tool_use_id TEXT PRIMARY KEY,
            trace_id TEXT NOT NULL,
            session_id TEXT,
            seq INTEGER NOT NULL,
            name TEXT,
            input TEXT,
            output TEXT,
            is_error INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            status TEXT NOT NULL DEFAULT 'running',
            agent_id TEXT,
            batch INTEGER,
            started_at REAL,
            ended_at REAL,
            duration_ms INTEGER,
            permission_requested INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX tool_calls_trace ON tool_calls(trace_id, seq);

        CREATE TABLE subagents (
            agent_id TEXT PRIMARY KEY,
            session_id TEXT,
            trace_id TEXT,
            parent_tool_use_id TEXT,
            agent_type TEXT,
            background INTEGER,
            started_at REAL,
            ended_at REAL,
            final_response TEXT,
            transcript_path TEXT
        );
        CREATE INDEX subagents_parent ON subagents(parent_tool_use_id);

        -- assistant text written before each tool call, read from the transcripts
        CREATE TABLE reasoning (
            tool_use_id TEXT PRIMARY KEY,
            text TEXT NOT NULL
        );

        CREATE TABLE transcript_offsets (
            path TEXT PRIMARY KEY,
            session_id TEXT,
            offset INTEGER NOT NULL DEFAULT 0,
            pending_text TEXT NOT NULL DEFAULT ''
        );

        -- journal records committed but maybe not yet deleted (the journal's offsets)
        CREATE TABLE journal_done (
            name TEXT PRIMARY KEY,
            mtime_ns INTEGER NOT NULL,
            size INTEGER NOT NULL
        );

        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            journal_name TEXT NOT NULL,
            reason TEXT NOT NULL,
            size INTEGER NOT NULL,
            received_at REAL,
            quarantined_at REAL NOT NULL,
            sample TEXT
        );
        """
    )
    # The search index, as sqlite-utils' enable_fts(create_triggers=True, tokenize="porter") wrote it.
    db.executescript(
        """
        CREATE VIRTUAL TABLE "traces_fts" USING FTS5 (
            "prompt", "final_response",
            tokenize='porter',
            content="traces"
        );
        INSERT INTO "traces_fts" (rowid, "prompt", "final_response")
            SELECT rowid, "prompt", "final_response" FROM "traces";
        CREATE TRIGGER "traces_ai" AFTER INSERT ON "traces" BEGIN
          INSERT INTO "traces_fts" (rowid, "prompt", "final_response") VALUES (new.rowid, new."prompt", new."final_response");
        END;
        CREATE TRIGGER "traces_ad" AFTER DELETE ON "traces" BEGIN
          INSERT INTO "traces_fts" ("traces_fts", rowid, "prompt", "final_response")
            VALUES('delete', old.rowid, old."prompt", old."final_response");
        END;
        CREATE TRIGGER "traces_au" AFTER UPDATE ON "traces" BEGIN
          INSERT INTO "traces_fts" ("traces_fts", rowid, "prompt", "final_response")
            VALUES('delete', old.rowid, old."prompt", old."final_response");
          INSERT INTO "traces_fts" (rowid, "prompt", "final_response") VALUES (new.rowid, new."prompt", new."final_response");
        END;
        """
    )


def _v2(db: Database) -> None:
    db.executescript(
        """
        -- signals of closed traces, from extractor `extractor_version`, with the gate decision
        CREATE TABLE signals (
            trace_id TEXT PRIMARY KEY,
            extractor_version INTEGER NOT NULL,
            computed_at REAL NOT NULL,
            signals TEXT NOT NULL,
            vector TEXT NOT NULL,
            qualifies INTEGER NOT NULL,
            gate_reasons TEXT NOT NULL
        );
        CREATE INDEX signals_qualifies ON signals(qualifies);

        CREATE TABLE feedback (
            trace_id TEXT PRIMARY KEY,
            rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
            note TEXT,
            rated_at REAL NOT NULL
        );

        -- traces whose signals must be (re)computed once they are closed
        CREATE TABLE dirty_traces (trace_id TEXT PRIMARY KEY);
        INSERT INTO dirty_traces SELECT trace_id FROM traces;
        """
    )


def _v3(db: Database) -> None:
    db.executescript(
        """
        -- where each trace and tool call came from: hook events, the transcript, or both
        ALTER TABLE traces ADD COLUMN source TEXT NOT NULL DEFAULT 'hooks';
        ALTER TABLE traces ADD COLUMN model TEXT;
        ALTER TABLE tool_calls ADD COLUMN source TEXT NOT NULL DEFAULT 'hooks';
        ALTER TABLE subagents ADD COLUMN source TEXT NOT NULL DEFAULT 'hooks';

        -- token usage, once per assistant message (streamed lines repeat it)
        CREATE TABLE message_usage (
            message_id TEXT PRIMARY KEY,
            trace_id TEXT NOT NULL,
            agent_id TEXT,
            model TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cache_read_tokens INTEGER,
            cache_creation_tokens INTEGER
        );
        CREATE INDEX message_usage_trace ON message_usage(trace_id);

        -- which trace a transcript prompt line became (prompts of old versions carry no prompt id)
        CREATE TABLE transcript_prompts (uuid TEXT PRIMARY KEY, trace_id TEXT NOT NULL);
        CREATE INDEX transcript_prompts_trace ON transcript_prompts(trace_id);
        CREATE INDEX tool_calls_session ON tool_calls(session_id);

        -- agent → Task call links read from transcripts (2.1.x progress lines, .meta.json)
        CREATE TABLE agent_links (agent_id TEXT PRIMARY KEY, tool_use_id TEXT NOT NULL);

        -- the importer keeps a file's whole reading state; start every file afresh
        ALTER TABLE transcript_offsets ADD COLUMN state TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE transcript_offsets ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
        DELETE FROM transcript_offsets;
        """
    )


def _v4(db: Database) -> None:
    db.executescript(
        """
        -- traces made up by `ccd bootstrap` (never used for evaluation; trained on only if asked)
        ALTER TABLE traces ADD COLUMN synthetic INTEGER NOT NULL DEFAULT 0;

        -- training runs: what was trained on what, how it went, what it produced
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            phase TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            started_at REAL,
            ended_at REAL,
            pid INTEGER,
            backend TEXT,
            config TEXT NOT NULL,
            dataset_path TEXT,
            dataset_manifest TEXT,
            metrics TEXT NOT NULL DEFAULT '{}',
            artifacts TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            log_path TEXT
        );
        """
    )


def _v5(db: Database) -> None:
    db.executescript(
        """
        -- the search index follows the two columns it holds, not every status or counter update
        DROP TRIGGER traces_au;
        CREATE TRIGGER traces_au AFTER UPDATE OF prompt, final_response ON traces BEGIN
          INSERT INTO traces_fts (traces_fts, rowid, prompt, final_response)
            VALUES ('delete', old.rowid, old.prompt, old.final_response);
          INSERT INTO traces_fts (rowid, prompt, final_response) VALUES (new.rowid, new.prompt, new.final_response);
        END;
        """
    )


# Tables whose rows hold redacted text, each with the version of the redaction rules that wrote it.
REDACTED_TABLES = ("events", "traces", "tool_calls", "subagents", "reasoning", "quarantine")


def _v6(db: Database) -> None:
    # Every row records the redactor version (cc_capture.redact.VERSION) that wrote it: the
    # column's default is the current version, and rows stored before it were redacted by the
    # first rules (1). A new redact.VERSION needs a migration that moves the default on (a test
    # checks they agree).
    for table in REDACTED_TABLES:
        db.executescript(f"""
            ALTER TABLE {table} ADD COLUMN redactor_version INTEGER NOT NULL DEFAULT 2;
            UPDATE {table} SET redactor_version = 1;
        """)


def _v7(db: Database) -> None:
    db.executescript(
        """
        -- every deploy and rollback attempt in Ollama, failed ones included; the alias points at the
        -- model_version of its newest succeeded row (model_version is the registry's models.version)
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY,
            action TEXT NOT NULL,
            model_version INTEGER NOT NULL,
            tag TEXT NOT NULL,
            alias TEXT NOT NULL,
            host TEXT NOT NULL,
            digest TEXT,
            quantization TEXT,
            previous_version INTEGER,
            status TEXT NOT NULL,
            fault TEXT,
            error TEXT,
            reason TEXT,
            started_at REAL NOT NULL,
            ended_at REAL NOT NULL
        );
        CREATE INDEX deployments_alias ON deployments(alias, status, id);
        """
    )


def _v8(db: Database) -> None:
    db.executescript(
        """
        -- every check of the learning scheduler: run or wait, with its reasons; a run's outcome
        CREATE TABLE schedule_decisions (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            action TEXT NOT NULL,
            reasons TEXT NOT NULL,
            next_check_at REAL,
            pid INTEGER,
            log_path TEXT,
            ended_at REAL,
            exit_code INTEGER,
            log_tail TEXT
        );
        CREATE INDEX schedule_decisions_action ON schedule_decisions(action, at);
        """
    )


def _v9(db: Database) -> None:
    db.executescript(
        """
        -- the model registry: every candidate model, what it came from, its status
        CREATE TABLE models (
            version INTEGER PRIMARY KEY,
            status TEXT NOT NULL,
            base_model TEXT NOT NULL,
            runs TEXT NOT NULL DEFAULT '[]',
            dataset_path TEXT,
            dataset_sha256 TEXT,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL UNIQUE,
            artifacts TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            status_at REAL NOT NULL
        );
        -- every change of a model's status, and every gate decision, with its reasons and figures
        CREATE TABLE model_events (
            id INTEGER PRIMARY KEY,
            version INTEGER NOT NULL REFERENCES models(version),
            at REAL NOT NULL,
            status TEXT NOT NULL,
            reasons TEXT NOT NULL,
            figures TEXT
        );
        CREATE INDEX model_events_version ON model_events(version);
        -- scores, cached by the model's weights and the eval set
        CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            model_sha256 TEXT NOT NULL,
            eval_set_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            items INTEGER NOT NULL,
            traces INTEGER NOT NULL,
            metrics TEXT NOT NULL,
            counts TEXT NOT NULL,
            intervals TEXT NOT NULL,
            per_tool TEXT NOT NULL,
            item_scores TEXT NOT NULL,
            timings TEXT NOT NULL,
            UNIQUE (model_sha256, eval_set_hash)
        );
        -- learning pipelines: their steps, timings and outcome
        CREATE TABLE pipelines (
            pipeline_id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            outcome TEXT,
            model_version INTEGER,
            started_at REAL NOT NULL,
            ended_at REAL,
            steps TEXT NOT NULL DEFAULT '[]',
            state TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        """
    )


def _v10(db: Database) -> None:
    db.executescript(
        """
        -- who answered in a session: Claude, or the local model run inside Claude Code (never trained on)
        ALTER TABLE sessions ADD COLUMN origin TEXT NOT NULL DEFAULT 'claude';
        -- where it ran: the git repository of its folder at SessionStart (git_state: repo, not_a_repo,
        -- unknown; NULL until looked at), or the branch its transcript names
        ALTER TABLE sessions ADD COLUMN git_state TEXT;
        ALTER TABLE sessions ADD COLUMN git_root TEXT;
        ALTER TABLE sessions ADD COLUMN git_commit TEXT;
        ALTER TABLE sessions ADD COLUMN git_dirty INTEGER;
        ALTER TABLE sessions ADD COLUMN git_branch TEXT;
        CREATE INDEX sessions_unlocated ON sessions(session_id) WHERE git_state IS NULL;
        -- sessions of the local model, known before their first event (`ccd compare`, `ccd local`)
        CREATE TABLE local_sessions (
            session_id TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            compare_id TEXT,
            registered_at REAL NOT NULL
        );
        -- a registered session is local from its first row on, whoever inserts it (hooks or transcript)
        CREATE TRIGGER sessions_registered_local AFTER INSERT ON sessions
        WHEN new.session_id IN (SELECT session_id FROM local_sessions) BEGIN
            UPDATE sessions SET origin = 'local' WHERE session_id = new.session_id;
        END;
        -- `ccd compare`: one row per comparison, one per replayed prompt
        CREATE TABLE comparisons (
            compare_id TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            settings TEXT NOT NULL DEFAULT '{}',
            summary TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE TABLE comparison_items (
            compare_id TEXT NOT NULL REFERENCES comparisons(compare_id),
            trace_id TEXT NOT NULL,
            local_session_id TEXT,
            local_trace_id TEXT,
            worktree TEXT,
            status TEXT NOT NULL,
            scores TEXT NOT NULL DEFAULT '{}',
            divergence INTEGER,
            dpo_pair INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            PRIMARY KEY (compare_id, trace_id)
        );
        """
    )


def _v11(db: Database) -> None:
    db.executescript(
        """
        -- which process runs a pipeline (pid and start time: a reused pid is not it) and its heartbeat
        ALTER TABLE pipelines ADD COLUMN pid INTEGER;
        ALTER TABLE pipelines ADD COLUMN pid_start TEXT;
        ALTER TABLE pipelines ADD COLUMN heartbeat_at REAL;
        ALTER TABLE schedule_decisions ADD COLUMN pid_start TEXT;
        """
    )


def _v12(db: Database) -> None:
    db.executescript(
        """
        -- `ccd calibrate`: what one Claude Code version sends a model, for each system-prompt choice
        CREATE TABLE calibrations (
            claude_version TEXT NOT NULL,
            system_prompt TEXT NOT NULL,       -- the choice it ran with: claude_code or compact
            recorded_at REAL NOT NULL,
            arguments TEXT NOT NULL,           -- JSON list: the flags Claude Code ran with
            system TEXT NOT NULL,              -- JSON list: the system blocks as sent
            tools TEXT NOT NULL,               -- JSON list: the tool definitions as sent
            tokens TEXT NOT NULL,              -- JSON: {system, tools, per_tool, counter}
            PRIMARY KEY (claude_version, system_prompt)
        );
        """
    )


def _v13(db: Database) -> None:
    db.executescript(
        """
        -- sessions spent for evaluation: `ccd compare` made a preference pair from one of their traces
        -- (trained on from then on), so they left the eval split for good (cc_capture.datasets.build.split_of)
        CREATE TABLE spent_sessions (
            session_id TEXT PRIMARY KEY,
            compare_id TEXT NOT NULL,          -- the first comparison that made a pair from it
            trace_id TEXT NOT NULL,            -- the trace that pair came from
            spent_at REAL NOT NULL
        );
        """
    )


def _v14(db: Database) -> None:
    db.executescript(
        """
        -- how long the machine had been suspended at the heartbeat (processes.suspended_s): a night
        -- asleep is not a frozen pipeline
        ALTER TABLE pipelines ADD COLUMN heartbeat_suspended_s REAL;
        """
    )


def _v15(db: Database) -> None:
    db.executescript(
        """
        -- when a run's training process started (processes.start_time): after a crash or a reboot
        -- its pid may belong to another process, which is then not the run's worker
        ALTER TABLE runs ADD COLUMN pid_start TEXT;
        """
    )


# Append only: a migration, once released, never changes.
MIGRATIONS: list[Callable[[Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10, _v11, _v12,
                                                _v13, _v14, _v15]


def _private_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


class DatabaseMissing(RuntimeError):
    """The database file is gone but its write-ahead log is not: a process still writes into the
    deleted file. Opening (creating) a new one here would make SQLite take that log for its own."""


class DatabaseGone(RuntimeError):
    """The file under an open database was deleted or replaced while it was open."""


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path` now, or None: compared with the one opened, it tells
    whether the database was deleted or replaced under an open connection."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def restore_deleted(db: Database, path: Path) -> bool:
    """The file under the open `db` was deleted: write what it holds back to `path` (it is still
    readable through the open connection) and return True; False when nothing could be restored or
    another file now sits at `path` (then that one is used as it is). The deleted file's
    write-ahead log and shared memory lose their names first, so no new database ever reads them;
    this connection keeps them open, so the copy still sees every committed row."""
    if path.exists():
        return False
    for suffix in ("-wal", "-shm"):
        try:
            os.unlink(str(path) + suffix)
        except FileNotFoundError:
            pass
    tmp = path.with_name(path.name + ".restoring")
    try:
        tmp.unlink(missing_ok=True)
        old = os.umask(0o077)
        try:
            target = sqlite3.connect(str(tmp))
            try:
                db.conn.backup(target)
            finally:
                target.close()
        finally:
            os.umask(old)
        os.link(tmp, path)  # never over a file that appeared meanwhile
        return True
    except (sqlite3.Error, OSError):
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _orphaned_wal(path: Path) -> bool:
    """A write-ahead log with frames in it beside no database: the database was deleted under it."""
    try:
        return not path.exists() and os.path.getsize(str(path) + "-wal") > 0
    except FileNotFoundError:
        return False


def set_aside_orphans(path: Path) -> Path | None:
    """Before a new database is made at `path` (the daemon, holding its lock, at start): move a
    deleted database's write-ahead log and shared memory out of the way, so SQLite never takes them
    for the new file's. An empty log holds nothing and is removed; one with frames is renamed (a
    process may still have it open) and its new name returned."""
    if path.exists():
        return None
    aside = None
    if _orphaned_wal(path):
        aside = Path(f"{path}-wal.orphaned-{int(time.time())}")
        os.replace(str(path) + "-wal", aside)
    for suffix in ("-wal", "-shm"):
        try:
            os.unlink(str(path) + suffix)
        except FileNotFoundError:
            pass
    return aside


def connect(path: Path, migrate: bool = True) -> Database:
    """Open (and bring up to date) the database: WAL, busy timeout, private file modes."""
    if _orphaned_wal(path):
        raise DatabaseMissing(
            f"the database {path} is missing while its write-ahead log is still there: it was deleted while "
            "the daemon was writing into it. The daemon notices within seconds and restores it; if this "
            "persists, run `ccd daemon stop && ccd daemon start`")
    old = os.umask(0o077)
    try:
        _private_file(path)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        db = Database(conn)
        if migrate:
            apply_migrations(db)
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if side.exists():
                os.chmod(side, 0o600)
        return db
    finally:
        os.umask(old)


def schema_version(db: Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def apply_migrations(db: Database) -> None:
    current = schema_version(db)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {current} is newer than this cc-capture ({len(MIGRATIONS)}): upgrade cc-capture"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        with transaction(db):
            # Another process (the daemon, a `ccd` command) may have migrated since we looked:
            # the write lock is held now, so this check and the migration are atomic.
            if schema_version(db) >= version:
                continue
            MIGRATIONS[version - 1](db)
            db.execute(f"PRAGMA user_version={version}")


class transaction:
    """`with transaction(db):` BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error."""

    def __init__(self, db: Database) -> None:
        self.conn = db.conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


# ---------------------------------------------------------------- queries


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"


def _rows(db: Database, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
    cur = db.execute(sql, params)
    cols = [c[0] for c in cur.description]
    for row in cur:
        yield dict(zip(cols, row))


def json_or_text(value: str | None) -> Any:
    """A stored JSON column decoded, or the text itself when it is not JSON. msgspec decodes
    several times faster than json, to the same values; where it refuses a document (NaN, a lone
    surrogate, escaped or not, a number out of range, nesting past its depth), json decides. It is
    imported here, not with the module: `ccd status` decodes nothing."""
    if value is None:
        return None
    import msgspec

    try:
        return msgspec.json.decode(value)
    except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):
        pass
    try:
        return json.loads(value)
    except ValueError:
        return value


def sessions_to_locate(db: Database) -> list[tuple[str, str, float | None]]:
    """(session_id, cwd, started_at) of sessions whose SessionStart was seen and whose git state was
    never looked at."""
    return db.execute("SELECT session_id, cwd, started_at FROM sessions WHERE git_state IS NULL "
                      "AND source IS NOT NULL AND cwd IS NOT NULL").fetchall()


def set_git_state(conn: Any, session_id: str, state: str, root: str | None, commit: str | None,
                  dirty: bool | None, branch: str | None) -> None:
    conn.execute("UPDATE sessions SET git_state = ?, git_root = ?, git_commit = ?, git_dirty = ?, "
                 "git_branch = coalesce(?, git_branch) WHERE session_id = ?",
                 (state, root, commit, None if dirty is None else int(dirty), branch, session_id))


# A condition on `traces t`: not a session of the local model (those are never training data).
NOT_LOCAL = "t.session_id NOT IN (SELECT session_id FROM sessions WHERE origin = 'local')"

def like_prefix(ref: str) -> str:
    """A LIKE pattern (with `ESCAPE '\\'`) matching strings that start with `ref` itself: `%` and `_`
    in an id prefix are characters, not wildcards."""
    return ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def resolve_trace_id(db: Database, ref: str) -> list[str]:
    """Trace ids matching a full id or a prefix (the CLI accepts short ids)."""
    return [r[0] for r in db.execute("SELECT trace_id FROM traces WHERE trace_id LIKE ? ESCAPE '\\' LIMIT 5",
                                     [like_prefix(ref)])]


def fts_query(text: str) -> str:
    """Words as an FTS5 query that finds them all, each quoted (so `-`, `:` or `"` are plain text)."""
    return " ".join('"' + w.replace('"', '""') + '"' for w in text.split())


def counts(db: Database) -> dict[str, int]:
    tables = ["events", "sessions", "traces", "tool_calls", "quarantine"]
    sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in tables)
    values = db.execute(sql).fetchone()
    names = ["events", "sessions", "traces", "tool_calls", "quarantined"]
    return dict(zip(names, values))


def last_event_at(db: Database) -> float | None:
    return db.execute("SELECT max(received_at) FROM events").fetchone()[0]


def trace_status_counts(db: Database) -> dict[str, int]:
    return dict(db.execute("SELECT status, count(*) FROM traces GROUP BY status").fetchall())


def qualifying_counts(db: Database) -> dict[str, int]:
    """How many closed traces qualify for training, are excluded, or await their signals."""
    q, x = db.execute("SELECT coalesce(sum(qualifies), 0), coalesce(sum(1 - qualifies), 0) FROM signals").fetchone()
    (pending,) = db.execute(
        "SELECT count(*) FROM dirty_traces d JOIN traces t USING (trace_id) WHERE t.status != 'open'"
    ).fetchone()
    return {"qualifies": q, "excluded": x, "pending": pending}


def mark_dirty(conn: Any, trace_ids: Any) -> None:
    """Queue traces for (re)computing their signals."""
    conn.executemany("INSERT OR IGNORE INTO dirty_traces (trace_id) VALUES (?)", [(t,) for t in trace_ids])


def register_local_session(conn: Any, session_id: str, model: str, compare_id: str | None = None) -> None:
    """A session the local model is about to run in (Claude Code started with `--session-id`): it is
    marked local whatever its events and transcript say."""
    conn.execute("INSERT OR REPLACE INTO local_sessions (session_id, model, compare_id, registered_at) "
                 "VALUES (?, ?, ?, ?)", (session_id, model, compare_id, time.time()))
    settle_origins(conn, [session_id])


def spend_session(conn: Any, session_id: str, compare_id: str, trace_id: str) -> None:
    """The session leaves the eval split for good: a comparison made a preference pair from its trace,
    so a model trained on that pair has seen it. The first comparison that spent it is kept."""
    conn.execute("INSERT OR IGNORE INTO spent_sessions (session_id, compare_id, trace_id, spent_at) "
                 "VALUES (?, ?, ?, ?)", (session_id, compare_id, trace_id, time.time()))


def spent_sessions(db: Database) -> frozenset[str]:
    """The sessions spent for evaluation (never in an eval split again)."""
    return frozenset(r[0] for r in db.execute("SELECT session_id FROM spent_sessions"))


def settle_origins(conn: Any, session_ids: Any) -> list[str]:
    """Mark local those of these sessions that were registered as local, or whose model (from the
    transcript) is a name cc-capture deployed to Ollama (a version tag or the alias, also without
    its `:latest`: Ollama's Messages API echoes the model name as the client sent it, and Ollama
    reads `NAME` as `NAME:latest`); their traces are queued for their signals again, so the gates
    exclude them. Returns the sessions marked."""
    ids = sorted(set(session_ids))
    marked: list[str] = []
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        marks = ",".join("?" * len(part))
        marked += [r[0] for r in conn.execute(
            f"SELECT session_id FROM sessions WHERE origin = 'claude' AND session_id IN ({marks}) AND ("
            "session_id IN (SELECT session_id FROM local_sessions) OR model IN (SELECT tag FROM deployments "
            "WHERE status = 'succeeded' UNION SELECT alias FROM deployments WHERE status = 'succeeded') OR "
            "model || ':latest' IN (SELECT alias FROM deployments WHERE status = 'succeeded'))", part)]
    for start in range(0, len(marked), 500):
        part = marked[start:start + 500]
        marks = ",".join("?" * len(part))
        conn.execute(f"UPDATE sessions SET origin = 'local' WHERE session_id IN ({marks})", part)
        mark_dirty(conn, [r[0] for r in conn.execute(f"SELECT trace_id FROM traces WHERE session_id IN ({marks})",
                                                     part)])
    return marked


def feedback_set(conn: Any, trace_id: str, rating: str, note: str | None) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO feedback (trace_id, rating, note, rated_at) VALUES (?, ?, ?, ?)",
        (trace_id, rating, note, time.time()),
    )
    mark_dirty(conn, [trace_id])


def latest_completed_trace(db: Database) -> str | None:
    row = db.execute(
        "SELECT trace_id FROM traces WHERE status = 'completed' ORDER BY coalesce(ended_at, started_at) DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


# Traces per gate reason, a reason's figures in parentheses left out ("trivial (3 words)" → "trivial").
GATE_REASON_COUNTS = """
    SELECT CASE WHEN instr(j.value, ' (') THEN substr(j.value, 1, instr(j.value, ' (') - 1) ELSE j.value END AS reason,
           count(*) AS traces
    FROM signals, json_each(signals.gate_reasons) j GROUP BY reason ORDER BY 2 DESC
"""


def signal_stats(db: Database) -> dict[str, Any]:
    """Distributions over stored signals: workflows, depths, tools, gate reasons."""
    def counts(sql: str) -> dict[str, int]:
        return {str(k): n for k, n in db.execute(sql)}

    return {
        "traces": counts("SELECT status, count(*) FROM traces GROUP BY status ORDER BY 2 DESC"),
        "qualifying": qualifying_counts(db),
        "workflow_types": counts("SELECT json_extract(signals, '$.workflow_type'), count(*) FROM signals "
                                 "GROUP BY 1 ORDER BY 2 DESC"),
        "exploration_depths": counts("SELECT json_extract(signals, '$.exploration_depth'), count(*) FROM signals "
                                     "GROUP BY 1 ORDER BY 2 DESC"),
        "tools": counts("SELECT name, count(*) FROM tool_calls GROUP BY name ORDER BY 2 DESC"),
        "gate_reasons": counts(GATE_REASON_COUNTS),
        "extractor_versions": counts("SELECT extractor_version, count(*) FROM signals GROUP BY 1"),
    }


def quarantined(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """Journal records that could not be ingested as they were, newest first, with their reason."""
    return [{"id": r["id"], "journal_name": r["journal_name"], "reason": r["reason"], "size": r["size"],
             "received_at": iso(r["received_at"]), "quarantined_at": iso(r["quarantined_at"]), "sample": r["sample"]}
            for r in _rows(db, "SELECT * FROM quarantine ORDER BY id DESC LIMIT ?", [limit])]


def last_run(db: Database) -> dict[str, Any] | None:
    row = db.execute("SELECT run_id, phase, status, ended_at, json_extract(metrics, '$.train_loss'), error "
                     "FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
    if row is None:
        return None
    return {"run_id": row[0], "phase": row[1], "status": row[2], "ended_at": iso(row[3]), "train_loss": row[4],
            "error": row[5]}


def save_calibration(conn: Any, claude_version: str, system_prompt: str, arguments: list[str],
                     system: list[dict[str, Any]], tools: list[dict[str, Any]], tokens: dict[str, Any]) -> None:
    """One calibration; a later one of the same version and choice replaces it."""
    conn.execute("INSERT OR REPLACE INTO calibrations (claude_version, system_prompt, recorded_at, arguments, system, "
                 "tools, tokens) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (claude_version, system_prompt, time.time(), json.dumps(arguments), json.dumps(system),
                  json.dumps(tools), json.dumps(tokens)))


def calibrations(db: Database, system_prompt: str | None = None) -> list[dict[str, Any]]:
    """Calibrations, the latest first (of one choice if given), with their JSON columns read."""
    sql = "SELECT * FROM calibrations" + (" WHERE system_prompt = ?" if system_prompt else "")
    rows = list(_rows(db, sql + " ORDER BY recorded_at DESC", (system_prompt,) if system_prompt else ()))
    for r in rows:
        for key in ("arguments", "system", "tools", "tokens"):
            r[key] = json.loads(r[key])
    return rows
