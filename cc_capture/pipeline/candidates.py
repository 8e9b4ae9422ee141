"""Models into the registry: a training run's adapter merged into its base (in a subprocess), or
the untuned base model itself (the first champion)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from cc_capture import reads, store
from cc_capture.config import Paths
from cc_capture.evaluate import registry
from cc_capture.evaluate.champion import ModelStatus
from cc_capture.evaluate.registry import Model
from cc_capture.records import Phase, Run, RunStatus

BASE_REASON = "the untuned base model: the first champion (a fine-tune must beat the model it started from)"


class CandidateError(Exception):
    """The model can't be registered; the message says why."""


def _hub_snapshot(name: str) -> Path | None:
    """A model name's newest snapshot in the local Hugging Face cache (no network)."""
    import os

    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
               / "hub")
    snapshots = hub / f"models--{name.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    return found[-1] if found else None


def base_model(db: store.Database, name: str) -> Model:
    """The base model as a registry entry (registered once; its weights hashed)."""
    folder = Path(name) if Path(name).is_dir() else _hub_snapshot(name)
    if folder is None:
        raise CandidateError(f"base model {name!r} is neither a folder nor in the local Hugging Face cache; "
                             "train once (which downloads it) or give a local folder")
    return registry.register(db, base_model=name, runs=[], path=folder.resolve(),
                             sha256=registry.files_sha256(folder), reasons=["registered as the base model"])


def ensure_champion(db: store.Database, base: str) -> Model:
    """The champion; before any promotion, the untuned base model becomes it."""
    current = registry.champion(db)
    if current is not None:
        return current
    model = base_model(db, base)
    registry.set_status(db, model.version, ModelStatus.CHAMPION, [BASE_REASON])
    return registry.get(db, model.version)


def _dataset_of(db: store.Database, run: Run) -> tuple[str | None, str | None]:
    """The SFT dataset a model's runs started from (evaluation reads its eval split)."""
    sft = run if run.phase == Phase.SFT else reads.run(db, run.artifacts.get("from_run", ""))
    if sft is None:
        return None, None
    return sft.dataset_path, sft.dataset_manifest.trace_ids_sha256 if sft.dataset_manifest else None


def from_run(db: store.Database, paths: Paths, run_ref: str) -> Model:
    """The candidate a completed run made: its adapter merged into its base, registered once."""
    run = reads.run(db, run_ref)
    if run is None:
        raise CandidateError(f"no run matches {run_ref!r}; `ccd runs list` shows them")
    if run.status != RunStatus.COMPLETED:
        raise CandidateError(f"run {run.run_id} is {run.status.value}, not completed")
    existing = registry.by_run(db, run.run_id)
    if existing is not None:
        return existing
    out = paths.models / f"run-{run.run_id}"
    paths.models.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = paths.models / f"run-{run.run_id}.log"
    with open(log, "a") as fh:
        done = subprocess.run([sys.executable, "-m", "cc_capture.train.merge", run.artifacts["adapter_dir"],
                               str(out)], stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise CandidateError(f"merging run {run.run_id}'s adapter failed; log: {log}")
    chain = [run.run_id] if run.phase == Phase.SFT else [run.artifacts["from_run"], run.run_id]
    dataset_path, dataset_sha = _dataset_of(db, run)
    return registry.register(db, base_model=run.config["base_model"], runs=chain, path=out,
                             sha256=registry.files_sha256(out), dataset_path=dataset_path,
                             dataset_sha256=dataset_sha, artifacts={"merged_weights": str(out)},
                             reasons=[f"trained by run {run.run_id} ({run.phase.value})"])
