"""Long-running actions as library calls (cc_capture.pipeline): what `ccd ingest`, `ccd import`,
the daemon and the tests all run."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from cc_capture import homelock, store
from cc_capture.config import Settings
from cc_capture.pipeline.ingest import ingest_once
from cc_capture.pipeline.transcripts import import_transcripts
from cc_capture.signals.runner import compute_pending
from cc_capture.transcripts import bulk
from cc_capture.transcripts.bulk import import_paths
from cc_capture.transcripts.discovery import discover
from conftest import emit


def test_one_ingest_pass_at_a_time_per_home(paths):
    emit(paths, {"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt_id": "p", "prompt": "hello"})
    with homelock.hold(paths):
        with pytest.raises(homelock.HomeBusy):
            ingest_once(paths, Settings())
        p = subprocess.run([sys.executable, "-m", "cc_capture", "ingest"], capture_output=True, text=True, timeout=60)
        assert "ingests continuously; nothing to do" in p.stderr  # whoever holds the lock ingests
    assert len(list(paths.journal.glob("*.ev"))) == 1  # nothing was lost meanwhile
    assert ingest_once(paths, Settings()).journal.ingested == 1


def _signals(db) -> list:
    return db.execute("SELECT trace_id, extractor_version, signals, vector, qualifies, gate_reasons FROM signals "
                      "ORDER BY trace_id").fetchall()


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_import_computes_signals_as_it_commits(shared, tmp_path, monkeypatch, workers):
    """Signals of the traces each commit made durable are computed right after it, and are the
    signals a separate pass computes. With workers, extraction runs in those processes while the
    import goes on, and the writer stores what they return."""
    from cc_capture.transcripts import parser

    monkeypatch.setattr(bulk, "COMMIT_EVERY_S", 0.0)  # a commit (and signals handed out) after every session
    if workers:
        monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", 0)  # the worker path whatever the size
        monkeypatch.setattr(bulk, "CHUNK_BYTES", 256 << 10)
        monkeypatch.setattr(parser, "CHUNK_BYTES", 256 << 10)
    roots = [shared / "transcripts", shared / "transcripts-more"]
    db = store.connect(tmp_path / "as-it-goes.db")
    left: list[int] = []

    def tail(n: int):
        left.append(n)
        return lambda: None

    done = import_transcripts(db, discover(roots), Settings(), workers=workers, signals_progress=tail)
    assert left == [0]  # nothing was left for the end
    assert done.signals.computed == len(_signals(db)) > 50 and done.signals.failed == 0
    assert db.execute("SELECT count(*) FROM dirty_traces d JOIN traces t USING (trace_id) "
                      "WHERE t.status != 'open'").fetchone() == (0,)

    apart = store.connect(tmp_path / "apart.db")
    import_paths(apart, roots)
    compute_pending(apart, Settings().gates)
    assert _signals(db) == _signals(apart)


def _all_stored(db, done, ids: list, expected: list) -> None:
    """Every one of these traces' signals stored, as a separate pass computes them."""
    assert done.computed == len(ids) and done.failed == 0
    assert _signals(db) == expected


@pytest.fixture
def unsignalled(shared, tmp_path):
    """A store holding the fixture transcripts, their signals not computed yet, and those signals
    as a separate pass computes them in a copy."""
    db = store.connect(tmp_path / "shared-out.db")
    import_paths(db, [shared / "transcripts"])
    apart = store.connect(tmp_path / "apart.db")
    import_paths(apart, [shared / "transcripts"])
    compute_pending(apart, Settings().gates)
    return db, _signals(apart)


def test_signals_of_a_dead_worker_are_computed_by_the_writer(unsignalled):
    """A worker that died costs time, not signals: what it was handed, and what would go to it
    after, is computed by the importing process."""
    import os
    from concurrent.futures.process import BrokenProcessPool

    from cc_capture.pipeline.transcripts import SignalWorkers
    from cc_capture.signals.runner import pending

    db, expected = unsignalled
    ids = pending(db)
    workers = SignalWorkers(db, Settings().gates, 1)
    try:
        assert isinstance(workers.pool.submit(os._exit, 1).exception(timeout=60), BrokenProcessPool)
        done = workers.share(ids)
        done.add(workers.finish())
    finally:
        workers.close()
    assert len(ids) > 10
    _all_stored(db, done, ids, expected)


def test_a_batch_finishing_while_the_writer_looks_is_stored_not_dropped(unsignalled):
    """A worker may finish a batch between two looks at its future: it is stored at the next look,
    never dropped from both lists (its signals then waited for the end of the import)."""
    from concurrent.futures import Future

    from cc_capture.pipeline import transcripts
    from cc_capture.signals.runner import derive, pending

    class FinishesWhileLookedAt(Future):
        looks = 0

        def done(self):
            self.looks += 1
            return self.looks > 1

    db, expected = unsignalled
    ids = pending(db)
    future = FinishesWhileLookedAt()
    future.set_result(derive(db, ids, Settings().gates))
    workers = transcripts.SignalWorkers.__new__(transcripts.SignalWorkers)  # no pool: the batch is already out
    workers.db, workers.gates, workers.workers, workers.running = db, Settings().gates, 1, [(future, ids)]
    workers.derived = []
    first = workers.store_done()  # not finished at this look
    assert first.computed == 0 and workers.running == [(future, ids)]
    second = workers.store_done()  # finished now: stored
    assert second.computed == len(ids) > 10 and workers.running == []
    assert pending(db) == [] and _signals(db) == expected


def test_signals_no_worker_has_started_are_computed_by_the_writer(unsignalled, tmp_path, monkeypatch):
    """At the end of an import the writer does not wait for busy workers to reach the batches still
    queued for them: it takes those back and computes them itself."""
    from cc_capture.pipeline import transcripts
    from cc_capture.signals.runner import pending
    from support.faults import block_until

    monkeypatch.setattr(transcripts, "SIGNALS_BATCH", 4)  # several batches from these few traces
    db, expected = unsignalled
    ids = pending(db)
    release = tmp_path / "release"
    workers = transcripts.SignalWorkers(db, Settings().gates, 1)
    try:
        for _ in range(3):  # the worker busy (with nothing it counts as its own), the pool's queue full behind it
            workers.pool.pool.submit(block_until, str(release))
        done = workers.share(ids)  # TASKS_PER_WORKER batches handed out (they wait behind those), the rest queued
        handed = [f for f, _ in workers.running]
        assert len(handed) == transcripts.TASKS_PER_WORKER and len(ids) > transcripts.TASKS_PER_WORKER * 4
        done.add(workers.finish())
        assert all(f.cancelled() for f in handed)  # taken back, not waited for
    finally:
        release.touch()
        workers.close()
    _all_stored(db, done, ids, expected)


def test_the_writer_computes_queued_signals_while_it_waits_for_a_chunk(unsignalled, tmp_path, monkeypatch):
    """Committed traces wait in a queue: a worker with fewer than TASKS_PER_WORKER tasks
    unfinished (chunks to parse included) is handed a batch, and the writer computes a few at a
    time from it while it waits for a chunk its workers still parse, until the chunk is there. It
    never goes off computing while its workers run out of chunks (on two cores that left the
    worker idle and bounded the import), nor waits while signals do; a chunk waits behind one
    batch at most."""
    from concurrent.futures import Future

    from cc_capture.pipeline import transcripts
    from cc_capture.signals.runner import pending
    from support.faults import block_until

    monkeypatch.setattr(transcripts, "SIGNALS_BATCH", 2)
    monkeypatch.setattr(transcripts, "WAITING_BATCH", 2)

    class ArrivesAtThirdLook(Future):
        looks = 0

        def done(self):
            self.looks += 1
            return self.looks >= 3

    db, expected = unsignalled
    ids = pending(db)
    assert len(ids) > 8
    release = tmp_path / "release"
    workers = transcripts.SignalWorkers(db, Settings().gates, 1)
    try:
        parsing = [workers.pool.submit(block_until, str(release)) for _ in range(2)]  # parsing, a chunk waiting
        done = workers.share(ids)
        assert workers.running == [] and list(workers.queued) == ids  # nothing handed: its chunks come first
        workers.meanwhile(ArrivesAtThirdLook())  # not there at two looks: two small batches computed here
        assert [len(d) for d in workers.derived] == [2, 2] and list(workers.queued) == ids[4:]
        arrived = Future()
        arrived.set_result([])
        workers.meanwhile(arrived)  # there: nothing computed
        assert len(workers.derived) == 2 and list(workers.queued) == ids[4:]
        release.touch()
        for task in parsing:
            task.result(timeout=60)
        held = tmp_path / "held"  # the batches handed out next wait behind this (not counted as the
        workers.pool.pool.submit(block_until, str(held))  # worker's): none can finish while counted
        stored = workers.share([])
        assert stored.computed == 4  # what was computed here is stored at the next commit
        done.add(stored)
        assert [batch for _, batch in workers.running] == [ids[4:6], ids[6:8]]  # the idle worker: one to
        assert list(workers.queued) == ids[8:]  # work on, one waiting
        held.touch()
        done.add(workers.finish())
    finally:
        release.touch()
        (tmp_path / "held").touch()
        workers.close()
    _all_stored(db, done, ids, expected)


def test_the_writer_is_offered_each_chunk_s_wait(shared, tmp_path, monkeypatch):
    """bulk calls `meanwhile` with the future of every chunk parsed ahead before it takes it (what
    lets the writer compute signals instead of waiting), and stores what a serial import stores."""
    from cc_capture.transcripts import parser

    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 256 << 10)
    monkeypatch.setattr(parser, "CHUNK_BYTES", 256 << 10)
    roots = [shared / "transcripts"]
    sessions = discover(roots)
    chunks = sum(-(-f.stat().st_size // (256 << 10)) for files in sessions.values()
                 for f in ([files.main] if files.main else []) + files.agents)
    offered = []
    db = store.connect(tmp_path / "parallel.db")
    stats = bulk.import_sessions(db, sessions, workers=1, meanwhile=offered.append)
    assert len(offered) == chunks > len(sessions) and all(f.done() for f in offered)
    serial = store.connect(tmp_path / "serial.db")
    assert import_paths(serial, roots).traces == stats.traces > 10
    assert (db.execute("SELECT count(*), sum(length(final_response)) FROM traces").fetchone()
            == serial.execute("SELECT count(*), sum(length(final_response)) FROM traces").fetchone())


def test_import_workers_started_ahead_are_taken_and_load_no_pydantic(unsignalled):
    """`ccd import` starts its workers before it reads its settings (import_worker.start_ahead, from
    cli/fast.py): the import takes those when it needs as many, else starts its own and lets them go.
    They compute signals from the gates' values, without pydantic (0.25 s of their start-up), and
    keep what they loaded out of full garbage collections."""
    import os

    from cc_capture.pipeline import import_worker
    from cc_capture.pipeline.transcripts import SignalWorkers
    from cc_capture.signals.runner import pending
    from support.probe import frozen, loaded

    db, expected = unsignalled
    ids = pending(db)
    import_worker.start_ahead(2)
    ahead = import_worker._ahead
    own = import_worker.pool(1)
    own.shutdown()
    assert ahead is not None and own is not ahead[1] and import_worker._ahead is None  # not as many: new ones
    with pytest.raises(RuntimeError):  # shut down
        ahead[1].submit(os.getpid)
    import_worker.start_ahead(1)
    ahead = import_worker._ahead
    workers = SignalWorkers(db, Settings().gates, 1)
    try:
        assert workers.pool.pool is ahead[1] and import_worker._ahead is None
        done = workers.share(ids)
        done.add(workers.finish())
        assert workers.pool.submit(loaded, "cc_capture.signals.runner", "pydantic").result(timeout=60) == [
            "cc_capture.signals.runner"]
        assert workers.pool.submit(frozen).result(timeout=60) > 10_000  # what it loaded: out of full collections
    finally:
        workers.close()
    _all_stored(db, done, ids, expected)


@pytest.mark.parametrize("args, workers", [([], bulk.default_workers()), (["--workers", "3", "T"], 3),
                                           (["T", "--workers=2", "--json"], 2), (["--workers", "0"], 0),
                                           (["--workers", "many"], None), (["--help"], None),
                                           (["--", "--workers", "2"], None),  # a file named --workers: none there
                                           (["--rescan", "T", "/nothing/here"], bulk.default_workers())])
def test_ccd_import_starts_as_many_workers_as_its_command_line_says(shared, tmp_path, monkeypatch, args, workers):
    from cc_capture.cli import fast
    from cc_capture.pipeline import import_worker

    (tmp_path / "claude").mkdir()
    (tmp_path / "claude" / "projects").symlink_to(shared / "transcripts")  # no paths named: Claude Code's are read
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    started = []
    monkeypatch.setattr(import_worker, "start_ahead", started.append)
    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", 1 << 20)  # the fixtures' transcripts are worth workers
    fast.start_import_workers([str(shared / "transcripts") if a == "T" else a for a in args])
    assert started == ([] if workers is None else [workers])


def test_ccd_import_of_files_too_small_for_workers_starts_none(shared, tmp_path, monkeypatch):
    """Named files and folders that hold less than PARALLEL_MIN_BYTES of transcripts (imported or
    not) could never use workers: none are started (each would cost about 0.3 s of CPU)."""
    from cc_capture.cli import fast
    from cc_capture.pipeline import import_worker

    started = []
    monkeypatch.setattr(import_worker, "start_ahead", started.append)
    transcripts = shared / "transcripts"
    size = sum(f.stat().st_size for f in transcripts.rglob("*.jsonl"))
    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", size + 1)
    fast.start_import_workers([str(transcripts), str(tmp_path)])
    assert started == []
    (tmp_path / ".claude" / "projects").mkdir(parents=True)  # no paths named: the import reads Claude Code's
    (tmp_path / ".claude" / "projects" / "one.jsonl").write_text("{}\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    fast.start_import_workers([])
    fast.start_import_workers(["--rescan", "--json"])
    assert started == []
    one = next(transcripts.rglob("*.jsonl"))
    assert bulk.may_need_workers([transcripts]) is False and bulk.may_need_workers([one]) is False
    assert bulk.imported_offsets(tmp_path / "none.db") == {}
    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", size)
    assert bulk.may_need_workers([tmp_path, transcripts]) is True
    fast.start_import_workers(["--workers", "2", str(transcripts)])
    assert started == [2]


def test_signals_failing_while_the_writer_waits_are_left_to_the_end_not_blamed_on_a_session(unsignalled, monkeypatch):
    """The writer computes while it waits inside a session's import: an error there must not roll
    that session back as failed. The batch goes back to the queue, and the end computes it."""
    from concurrent.futures import Future

    from cc_capture.pipeline import transcripts
    from cc_capture.signals import runner

    db, expected = unsignalled
    ids = runner.pending(db)
    workers = transcripts.SignalWorkers(db, Settings().gates, 1)
    derive = runner.derive
    try:
        workers.workers = 0  # nothing handed out: every trace is the writer's
        with monkeypatch.context() as m:
            m.setattr(runner, "derive", lambda *a: (_ for _ in ()).throw(sqlite3.OperationalError("disk I/O error")))
            done = workers.share(ids)
            workers.meanwhile(Future())  # never there: would compute everything
        assert list(workers.queued) == ids and workers.derived == [] and runner.derive is derive
        done.add(workers.finish())
    finally:
        workers.close()
    _all_stored(db, done, ids, expected)


def test_ccd_import_with_workers_stores_what_one_process_stores(shared, tmp_path, monkeypatch):
    """The whole `ccd import` of ../shared (23 MB: enough for workers), its workers started before
    typer and the settings load (cli/fast.py) and handed this home's e-mail policy and gates with
    each task, stores every row, signals included, as the same import in one process does. The
    settings are not the defaults, and on these transcripts both change what is stored (`all`
    redacts addresses in tool calls that the default keeps), so workers left on the defaults
    would differ."""
    from conftest import ccd

    config = '[capture]\nredact_emails = "all"\ntranscript_roots = []\n[gates]\nexclude_statuses = ["failed"]\n'
    rows = []
    for workers in ("2", "0"):
        home = tmp_path / f"home-{workers}"
        home.mkdir(mode=0o700)
        (home / "config.toml").write_text(config)
        monkeypatch.setenv("CC_CAPTURE_HOME", str(home))
        summary = json.loads(ccd("import", str(shared), "--workers", workers, "--json").stdout)
        db = store.connect(home / "cc-capture.db")
        rows.append((summary, [db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in
                               ("traces", "tool_calls", "reasoning", "subagents", "message_usage")],
                     db.execute("SELECT trace_id, signals, vector, qualifies, gate_reasons FROM signals "
                                "ORDER BY trace_id").fetchall(),
                     db.execute("SELECT s.gate_reasons FROM signals s JOIN traces t USING (trace_id) "
                                "WHERE t.status = 'interrupted'").fetchall()))
    assert rows[0] == rows[1]
    summary, tables, signals, interrupted = rows[0]
    assert summary["traces"] == len(tables[0]) > 50 and len(signals) > 50 and not summary["failed"]
    assert interrupted and not any("errored or incomplete" in reasons for (reasons,) in interrupted)  # the gates


def _running(pid: int) -> bool:
    """Whether this process still runs (a zombie waiting for its reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_import_workers_end_with_the_process_that_started_them(tmp_path, signal_name):
    """`ccd import` starts its workers first thing (import_worker.start_ahead): killed then or
    later (SIGTERM, SIGKILL: no clean-up of its own runs), its workers end too, instead of
    waiting forever for tasks and holding the pipes of whoever ran the command."""
    from conftest import wait_for

    script = ("import os, signal\n"
              "from cc_capture.pipeline import import_worker\n"
              "import_worker.start_ahead(2)\n"
              "pool = import_worker._ahead[1]\n"
              "[f.result() for f in [pool.submit(os.getpid) for _ in range(4)]]\n"
              "print(' '.join(str(pid) for pid in pool._processes), flush=True)\n"
              f"os.kill(os.getpid(), signal.{signal_name})\n")
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "w") as stdout, open(err, "w") as stderr:  # files: a pipe would stay open while the workers live
        command = subprocess.run([sys.executable, "-c", script], stdout=stdout, stderr=stderr,
                                 stdin=subprocess.DEVNULL, timeout=120)
    pids = [int(pid) for pid in out.read_text().split()]
    assert len(pids) == 2 and command.returncode < 0, err.read_text()
    try:
        wait_for(lambda: not any(_running(pid) for pid in pids), timeout=20, message="the workers to end")
    finally:
        for pid in filter(_running, pids):
            os.kill(pid, 9)


def test_ccd_import_of_files_imported_already_starts_no_workers(shared, tmp_path, monkeypatch):
    """`ccd import` run again over what it imported (the daemon mirrors transcripts live, so that
    is the common case) has too little left to read for workers: none are started ahead (they
    cost the whole command 0.4 s of CPU, half its time, on ../shared/transcripts-more), unless
    `--rescan` may read it all again."""
    from cc_capture.cli import fast
    from cc_capture.paths import Paths
    from cc_capture.pipeline import import_worker

    started = []
    monkeypatch.setattr(import_worker, "start_ahead", started.append)
    transcripts = shared / "transcripts"
    monkeypatch.setattr(bulk, "PARALLEL_MIN_BYTES", sum(f.stat().st_size for f in transcripts.rglob("*.jsonl")))
    monkeypatch.setenv("CC_CAPTURE_HOME", str(tmp_path))
    fast.start_import_workers([str(transcripts)])
    assert started == [bulk.default_workers()]  # nothing imported yet
    db = store.connect(Paths().db)
    import_paths(db, [transcripts])
    db.conn.close()
    fast.start_import_workers([str(transcripts)])
    assert started == [bulk.default_workers()]  # read already: none
    fast.start_import_workers(["--rescan", str(transcripts)])
    assert started == [bulk.default_workers()] * 2
