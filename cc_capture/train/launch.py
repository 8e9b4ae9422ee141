"""Starting a training run, as a library call the CLI, the pipeline and (next) the scheduler share:
create the run row (settings, dataset resolved or built), start the worker subprocess, and follow
its progress as typed events until it exits."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Union

from cc_capture import reads, store, workers
from cc_capture.config import Paths, Settings
from cc_capture.processes import running
from cc_capture.train import runs
from cc_capture.records import DatasetManifest, Phase, Run, RunStatus
from cc_capture.train.runs import RunDir


class LaunchError(Exception):
    """The run can't start as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Started:
    """The worker began (or resumed) training."""

    resume_from: str | None


@dataclass(frozen=True)
class Step:
    """One logged optimizer step."""

    step: int
    max_steps: int | None
    loss: float | None
    fields: dict[str, float]


@dataclass(frozen=True)
class Finished:
    """The worker exited; `run` is the run as it ended."""

    run: Run


Event = Union[Started, Step, Finished]


def resolve_dataset(db: store.Database, paths: Paths, settings: Settings, phase: Phase,
                    dataset: Path | None) -> tuple[Path, DatasetManifest]:
    """The dataset folder for the phase and its manifest: the one given, or one built now."""
    from cc_capture.train.methods import METHODS

    kind = METHODS[phase].dataset_kind
    if dataset is None:
        from cc_capture.datasets.build import DatasetError, build

        try:
            built = build(db, paths.datasets, settings.datasets, settings.local.system_prompt, dpo=kind == "dpo")
        except DatasetError as e:
            raise LaunchError(str(e)) from e
        dataset, manifest = built.path, built.manifest
    else:
        if not (dataset / "hf").is_dir():
            raise LaunchError(f"{dataset} is not a dataset folder from `ccd dataset build` (no hf/ inside)")
        manifest = reads.manifest(dataset)
    if manifest.kind != kind:
        raise LaunchError(f"the {phase.value} phase needs a {kind} dataset; {dataset} is {manifest.kind}")
    return dataset, manifest


def sft_to_start_from(db: store.Database, run_ref: str | None) -> str:
    """The completed SFT run a DPO or GRPO run trains on: the one named, or the latest."""
    if run_ref is None:
        run = reads.latest_completed_run(db, Phase.SFT)
        if run is None:
            raise LaunchError("no completed SFT run: run `ccd train --phase sft` first")
        return run.run_id
    run = reads.run(db, run_ref)
    if run is None:
        raise LaunchError(f"no run matches {run_ref!r}; `ccd runs list` shows them")
    if run.phase != Phase.SFT or run.status != RunStatus.COMPLETED:
        raise LaunchError(f"run {run.run_id} is a {run.status.value} {run.phase.value} run; "
                          "DPO and GRPO start from a completed SFT run")
    return run.run_id


def create(db: store.Database, paths: Paths, settings: Settings, phase: Phase, *,
           base_model: str | None = None, max_steps: int | None = None, dataset: Path | None = None,
           from_run: str | None = None) -> str:
    """A new run row (queued) with its settings and dataset; a DPO or GRPO run also records the SFT
    run it starts from (`from_run`, default the latest completed), chosen now, not when it starts."""
    from cc_capture.train.methods import METHODS

    if METHODS[phase].starts_from_sft:
        from_run = sft_to_start_from(db, from_run)
    elif from_run is not None:
        raise LaunchError("--from-run goes with --phase dpo or grpo (they start from an SFT run)")
    cfg = settings.train.model_dump()
    if base_model:
        cfg["base_model"] = base_model
    if max_steps is not None:
        cfg["max_steps"] = max_steps
    dataset, manifest = resolve_dataset(db, paths, settings, phase, dataset)
    return runs.create(db, phase, cfg, str(dataset), manifest, from_run=from_run)


def resumable(db: store.Database, run_ref: str) -> str:
    """The id of a run that can be continued (`--resume`)."""
    run = reads.run(db, run_ref)
    if run is None:
        raise LaunchError(f"no run matches {run_ref!r}; `ccd runs list` shows them")
    if run.status == RunStatus.COMPLETED:
        raise LaunchError(f"run {run.run_id} is already completed")
    return run.run_id


def _wait_for_previous_worker(db: store.Database, run_id: str, timeout_s: float) -> None:
    """A run still marked running whose worker is alive lost its starter (killed -9): the worker
    stops itself (workers.stop_with_starter). Wait for that, so two workers never write one run. A
    process that got the worker's pid after it died (a reboot, a crash) is not it: no wait for it."""
    deadline = time.time() + timeout_s
    while True:
        run = reads.run(db, run_id)
        if run is None or run.status != RunStatus.RUNNING or not running(run.pid, run.pid_start):
            return
        if time.time() > deadline:
            raise LaunchError(f"run {run_id}'s earlier worker (pid {run.pid}) is still running; "
                              f"stop it (`kill {run.pid}`) and resume the run again")
        time.sleep(0.2)


def start(db: store.Database, paths: Paths, run_id: str, wait_s: float = 60.0) -> subprocess.Popen:
    """Start the worker for a run (it resumes from the run's last checkpoint, if any), once an
    earlier worker of the same run has ended."""
    _wait_for_previous_worker(db, run_id, wait_s)
    run_dir = RunDir.of(paths, run_id).ensure()
    runs.update(db, run_id, log_path=str(run_dir.log))
    return workers.start("cc_capture.train.worker", [run_id], run_dir.log)


def follow(db: store.Database, paths: Paths, run_id: str, proc: subprocess.Popen) -> Iterator[Event]:
    """The run's progress as events, ending with Finished once the worker exits. Closing the
    iterator early (or Ctrl-C while it waits) stops the worker, which records the run interrupted."""
    run_dir = RunDir.of(paths, run_id)
    try:
        for line in workers.follow(run_dir.progress, proc):
            if line.get("event") == "start":
                yield Started(line.get("resume_from"))
            elif "step" in line:
                fields = {k: v for k, v in line.items() if k not in ("step", "max_steps")}
                yield Step(line["step"], line.get("max_steps") or None, line.get("loss"), fields)
    except (KeyboardInterrupt, GeneratorExit):
        workers.stop(proc)
        raise
    yield Finished(reads.run(db, run_id))


def run(db: store.Database, paths: Paths, run_id: str) -> Iterator[Event]:
    """Start the worker for a run and follow it."""
    return follow(db, paths, run_id, start(db, paths, run_id))
