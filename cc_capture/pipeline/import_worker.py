"""The worker processes of a parallel import (`pipeline.transcripts`): how they start, and what
they run besides parsing (the signals of traces the import committed, read on their own
connection).

`ccd import` starts them first thing (`start_ahead`, from cli/fast.py), before its command line,
settings and database are read: their start-up (a fresh interpreter, `spawn`, then the parser,
the redactor and the signals stack, about 0.5 s of CPU each) then overlaps the importing
process's own (typer, pydantic, the settings: about 0.6 s) instead of following it, and delays
neither their first chunks nor their first signals. What a worker needs of the import (its
database, its e-mail policy, its gates) is not known when it starts, so every task carries it
(`Setup`, through `Workers.submit`) and a worker takes it on when it changes.
"""

from __future__ import annotations

import gc
import importlib
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from cc_capture import redact

if TYPE_CHECKING:
    from cc_capture.signals.gates import GateValues
    from cc_capture.signals.runner import Derived
    from cc_capture.store import Database


@dataclass(frozen=True)
class Setup:
    """What the tasks of one import run under in a worker."""

    db_path: str  # where committed traces are read from (signals)
    gates: dict[str, Any]  # config.GateSettings.model_dump() of the importing process: GateValues here
    email_rules: tuple[str, tuple[str, ...]]  # redact.email_rules() of the importing process


_setup: Setup | None = None
_signals: tuple[Database, GateValues] | None = None  # opened when signals are first asked for under _setup
_ahead: tuple[int, ProcessPoolExecutor] | None = None  # started by start_ahead, not taken yet


def boot() -> None:
    """A worker's initializer: load what its tasks run (the parser and redactor, the store, and
    the signals stack, with its phrase patterns compiled; not pydantic: the gates come as
    `GateValues`)."""
    for module in ("cc_capture.transcripts.parser", "cc_capture.store", "cc_capture.signals.runner"):
        importlib.import_module(module)
    gc.freeze()  # a worker lives for one import: what it loaded stays, and full collections skip it


def run(setup: Setup, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a worker, under the import's `setup` (taken on if it is new here)."""
    global _setup, _signals
    if setup != _setup:
        redact.configure(*setup.email_rules)
        _setup, _signals = setup, None
    return fn(*args)


def derive(trace_ids: list[str]) -> list[Derived]:
    """`signals.runner.derive` of these committed traces, on this worker's own connection."""
    global _signals
    from cc_capture import store
    from cc_capture.signals import runner
    from cc_capture.signals.gates import GateValues

    if _setup is None:
        raise RuntimeError("import_worker.derive runs through import_worker.run (Workers.submit)")
    if _signals is None:
        _signals = store.connect(Path(_setup.db_path), migrate=False), GateValues(**_setup.gates)
    db, gates = _signals
    return runner.derive(db, trace_ids, gates)


class Workers(Executor):
    """A pool of import workers whose every task runs under one import's `Setup`, and which knows
    how many of the tasks handed to it are unfinished (parsing and signals alike)."""

    def __init__(self, pool: ProcessPoolExecutor, setup: Setup) -> None:
        self.pool = pool
        self.setup = setup
        self.tasks: list[Future] = []  # handed out, perhaps unfinished

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if kwargs:
            raise TypeError("import worker tasks take positional arguments only")
        task = self.pool.submit(run, self.setup, fn, *args)
        self.tasks.append(task)
        return task

    def unfinished(self) -> int:
        self.tasks = [task for task in self.tasks if not task.done()]
        return len(self.tasks)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait, cancel_futures=cancel_futures)


def _started(workers: int) -> ProcessPoolExecutor:
    from cc_capture.transcripts import bulk

    pool = bulk.worker_pool(workers, boot)
    for _ in range(workers):  # a pool starts a worker for a task it cannot give an idle one: all start now
        pool.submit(os.getpid)
    return pool


def start_ahead(workers: int) -> None:
    """Start `workers` import workers now, for the import this process is about to run (`pool`)."""
    global _ahead
    if workers >= 1 and _ahead is None:
        _ahead = workers, _started(workers)


def pool(workers: int) -> ProcessPoolExecutor:
    """`workers` import workers: those started ahead if they are as many, else new ones."""
    global _ahead
    ahead, _ahead = _ahead, None
    if ahead is not None and ahead[0] == workers:
        return ahead[1]
    drop_ahead(ahead)
    return _started(workers)


def drop_ahead(ahead: tuple[int, ProcessPoolExecutor] | None = None) -> None:
    """The workers started ahead (or `ahead`), not needed after all (an import too small for them,
    or with another count): ended now, also in the middle of their start-up, which this process
    would otherwise wait for when it exits (a small import finished sooner than that)."""
    global _ahead
    if ahead is None:
        ahead, _ahead = _ahead, None
    if ahead is not None:
        pool = ahead[1]
        processes = list((pool._processes or {}).values())  # ProcessPoolExecutor.terminate_workers() from 3.14
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
