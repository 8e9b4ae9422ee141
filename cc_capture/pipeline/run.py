"""The learning pipeline (`ccd pipeline run`): dataset → SFT → DPO (with enough preference pairs)
→ evaluate → gate → export → deploy, each step recorded in the `pipelines` table with its timings and outcome.

One pipeline at a time per home: a lock file held for the whole run says which pipeline holds it.
Its row names its process (pid and start time) and carries a heartbeat, so a process that died
without recording its end is known (cc_capture.learning_state.reap_dead marks it failed).
A pipeline stopped by a crash or Ctrl-C is resumed by the next `run` from its last finished step
(an interrupted training run continues from its checkpoint). Export and deploy act on the champion
the alias does not point at yet (this run's promotion, or one whose deploy failed before), so a
failed deploy is retried by the next run.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator

from cc_capture import reads, store
from cc_capture.config import Paths, Settings
from cc_capture.evaluate import registry
from cc_capture.evaluate.evaluator import evaluate
from cc_capture.evaluate.items import EvalSetError, from_dataset
from cc_capture.learning_state import Holder
from cc_capture.pipeline.candidates import from_run
from cc_capture.pipeline.challenge import challenge
from cc_capture.pipeline.heartbeat import heartbeat
from cc_capture.processes import interruptible, start_time, suspended_s
from cc_capture.records import Phase, RunStatus
from cc_capture.train import launch

STEPS = ("dataset", "sft", "dpo", "evaluate", "gate", "export", "deploy")


class PipelineBusy(Exception):
    """Another pipeline holds this home's lock; the message says which."""


class Outcome(str, Enum):
    PROMOTED = "promoted"
    REJECTED = "rejected"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to learn from yet


class StepStatus(str, Enum):
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class Skip(Exception):
    """This step has nothing to do; with `final`, neither has the rest of the pipeline."""

    def __init__(self, reason: str, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final


@dataclass
class Pipeline:
    pipeline_id: str
    status: str = "running"
    outcome: str | None = None
    model_version: int | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The `ccd pipeline run --json` shape (README)."""
        return {"pipeline_id": self.pipeline_id, "outcome": self.outcome, "model_version": self.model_version,
                "steps": [{k: s.get(k) for k in ("name", "status", "started_at", "ended_at", "detail")}
                          for s in self.steps]}


@contextmanager
def _lock(paths: Paths) -> Iterator[Any]:
    paths.ensure()
    fd = os.open(paths.pipeline_lock, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = fh.readline().strip() or "another pipeline"
            raise PipelineBusy(f"{holder} is running in this home; wait for it to finish "
                               "(`ccd pipeline run` resumes it if it was stopped)") from None
        yield fh


def _save(db: store.Database, p: Pipeline, ended: bool = False) -> None:
    with store.transaction(db) as conn:
        conn.execute("UPDATE pipelines SET status = ?, outcome = ?, model_version = ?, steps = ?, state = ?, "
                     "ended_at = ? WHERE pipeline_id = ?",
                     (p.status, p.outcome, p.model_version, json.dumps(p.steps), json.dumps(p.state),
                      time.time() if ended else None, p.pipeline_id))


def _resume_or_new(db: store.Database) -> Pipeline:
    """The last pipeline if it never finished (its process died or was interrupted), else a new one;
    recorded as running in this process (pid, start time, a first heartbeat) from this moment."""
    me = (os.getpid(), start_time(os.getpid()), time.time(), suspended_s())
    rows = list(db.query("SELECT * FROM pipelines ORDER BY started_at DESC LIMIT 1"))
    if rows and rows[0]["status"] in ("running", "interrupted", "died"):
        r = rows[0]
        with store.transaction(db) as conn:
            conn.execute("UPDATE pipelines SET status = 'running', outcome = NULL, ended_at = NULL, error = NULL, "
                         "pid = ?, pid_start = ?, heartbeat_at = ?, heartbeat_suspended_s = ? WHERE pipeline_id = ?", (*me, r["pipeline_id"]))
        return Pipeline(r["pipeline_id"], "running", None, r["model_version"], json.loads(r["steps"]),
                        json.loads(r["state"]))
    p = Pipeline(time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    with store.transaction(db) as conn:
        conn.execute("INSERT INTO pipelines (pipeline_id, status, started_at, pid, pid_start, heartbeat_at, "
                     "heartbeat_suspended_s) VALUES (?, 'running', ?, ?, ?, ?, ?)", (p.pipeline_id, me[2], *me))
    return p


def _train(db: store.Database, paths: Paths, settings: Settings, p: Pipeline, phase: Phase,
           dataset: Path, from_run: str | None = None) -> str:
    """Train one phase (resuming this pipeline's run of it if one was started) and return its id;
    `from_run`: the SFT run a DPO run starts from."""
    key = f"{phase.value}_run"
    run = reads.run(db, p.state[key]) if key in p.state else None
    if run is None or run.status != RunStatus.COMPLETED:
        if run is None:
            p.state[key] = launch.create(db, paths, settings, phase, dataset=dataset, from_run=from_run)
            _save(db, p)
        finished = None
        for event in launch.run(db, paths, p.state[key]):
            if isinstance(event, launch.Finished):
                finished = event.run
        if finished is None or finished.status != RunStatus.COMPLETED:
            raise RuntimeError(f"{phase.value} run {p.state[key]} {finished.status.value if finished else 'stopped'}: "
                               f"{finished.error if finished else None}")
    return p.state[key]


def _step(name: str, db: store.Database, paths: Paths, settings: Settings, p: Pipeline) -> str:
    """Run one step; its detail for the record (Skip when it has nothing to do)."""
    from cc_capture.datasets.build import DatasetError, build

    if name == "dataset":
        try:
            built = build(db, paths.datasets, settings.datasets, settings.local.system_prompt,
                          include_synthetic=settings.learning.include_synthetic)
            from_dataset(built.path, settings.evaluate.max_items, store.spent_sessions(db))  # is there a held-out item to judge by?
        except (DatasetError, EvalSetError) as e:  # nothing to learn from, or nothing to judge a model by
            raise Skip(str(e), final=True) from e
        p.state["dataset"] = str(built.path)
        p.state["captured_until"] = built.manifest.captured_until  # the data snapshot min_new_traces counts from
        return f"{built.counts['train']} train, {built.counts['eval']} eval examples → {built.path}"
    if name == "sft":
        run_id = _train(db, paths, settings, p, Phase.SFT, Path(p.state["dataset"]))
        return f"run {run_id}"
    if name == "dpo":
        try:
            built = build(db, paths.datasets, settings.datasets, settings.local.system_prompt, dpo=True,
                          include_synthetic=settings.learning.include_synthetic)
        except DatasetError as e:
            raise Skip(f"no preference pairs: {e}") from e
        pairs = built.counts["train"]
        if pairs < settings.learning.min_dpo_pairs:
            raise Skip(f"{pairs} preference pairs < [learning] min_dpo_pairs {settings.learning.min_dpo_pairs}")
        return f"run {_train(db, paths, settings, p, Phase.DPO, built.path, from_run=p.state['sft_run'])}"
    if name == "evaluate":
        model = from_run(db, paths, p.state.get("dpo_run") or p.state["sft_run"])
        p.model_version = model.version
        evalset = from_dataset(Path(model.dataset_path or p.state["dataset"]), settings.evaluate.max_items,
                               store.spent_sessions(db))
        result = evaluate(db, paths, model, evalset, settings.evaluate)
        return (f"v{model.version}: behavioural_similarity {result.summary.metrics['behavioural_similarity']} "
                f"on {result.items} items")
    if name == "gate":
        model = registry.get(db, p.model_version)
        report = challenge(db, paths, settings, model)
        p.outcome = Outcome.PROMOTED.value if report.decision and report.decision.promote else Outcome.REJECTED.value
        return "; ".join(report.decision.reasons) if report.decision else "already the champion"
    if name in ("export", "deploy"):
        return _ship(name, db, paths, settings)
    raise ValueError(name)


def _ship(name: str, db: store.Database, paths: Paths, settings: Settings) -> str:
    from cc_capture.deploy import release
    from cc_capture.export import toolchain

    target = release.pending(db, settings)
    if target is None:
        raise Skip("the deployed model is the champion")
    if name == "export":
        if release.exported(db, settings, target):
            return f"v{target} was exported before"
        if toolchain.missing():
            raise Skip("export needs: " + "; ".join(toolchain.missing()), final=True)
        return f"v{target}: " + release.summary(release.export_version(db, paths, settings, target)[1])
    d = release.deploy_version(db, settings, target, automatic=True).deployment
    return f"v{target} deployed as {d.tag} ({d.alias} points at it) at {d.host}"


def run(db: store.Database, paths: Paths, settings: Settings,
        on_step: Callable[[str], None] | None = None) -> Pipeline:
    """Run (or resume) the pipeline to its end: promoted, rejected, failed or skipped. Ctrl-C and
    `ccd pipeline stop` (SIGINT) interrupt it cleanly, however the process was started."""
    interruptible()
    with _lock(paths) as lock, ExitStack() as beating:
        p = _resume_or_new(db)
        lock.seek(0)
        lock.truncate()
        lock.write(Holder(p.pipeline_id, os.getpid(), start_time(os.getpid())).lock_text())  # holder() reads it
        lock.flush()
        beating.enter_context(heartbeat(paths.db, p.pipeline_id))
        finished = {s["name"] for s in p.steps if s["status"] in (StepStatus.DONE.value, StepStatus.SKIPPED.value)}
        for name in STEPS:
            if name in finished:
                continue
            if on_step:
                on_step(name)
            p.steps = [s for s in p.steps if s["name"] != name]
            step = {"name": name, "status": StepStatus.RUNNING.value, "started_at": store.iso(time.time()),
                    "ended_at": None, "detail": None}
            p.steps.append(step)
            _save(db, p)
            try:
                step["detail"] = _step(name, db, paths, settings, p)
                step["status"] = StepStatus.DONE.value
            except Skip as s:
                step["status"], step["detail"] = StepStatus.SKIPPED.value, str(s)
                if s.final:
                    step["ended_at"] = store.iso(time.time())
                    p.status, p.outcome = "finished", p.outcome or Outcome.SKIPPED.value  # the gate's stays
                    _save(db, p, ended=True)
                    return p
            except KeyboardInterrupt:
                step["status"], step["ended_at"] = StepStatus.INTERRUPTED.value, store.iso(time.time())
                p.status = "interrupted"
                _save(db, p)
                raise
            except Exception as e:
                step["status"], step["detail"] = StepStatus.FAILED.value, f"{type(e).__name__}: {e}"
                step["ended_at"] = store.iso(time.time())
                p.status, p.outcome = "finished", Outcome.FAILED.value
                _save(db, p, ended=True)
                return p
            step["ended_at"] = store.iso(time.time())
            _save(db, p)
        p.status = "finished"
        _save(db, p, ended=True)
        return p
