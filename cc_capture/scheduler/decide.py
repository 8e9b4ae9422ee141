"""The scheduler's decision as a pure function of (now, settings, store state, machine state).

Every condition is a `[learning]` setting; a `wait` lists every unmet one, so `ccd status` and
`ccd schedule` can say exactly why the model does not learn yet. Nothing here reads a clock, the
database or the machine: the caller gathers `StoreState` and `MachineState` (cc_capture.scheduler.
state and .probes), which keeps every branch testable with fixed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `ccd status` reads decisions without loading pydantic
    from cc_capture.config import LearningSettings

GB = 1 << 30


class Action(str, Enum):
    RUN = "run"
    WAIT = "wait"


@dataclass(frozen=True)
class Reason:
    condition: str  # which setting: window, new_traces, interval, gpu, idle, power, disk, running, retry, enabled
    message: str


@dataclass
class Decision:
    action: Action
    reasons: list[Reason] = field(default_factory=list)  # wait: every unmet condition; run: what triggered it
    next_window_at: datetime | None = None  # the next start of the window, when outside it


@dataclass(frozen=True)
class StoreState:
    new_traces: int  # qualifying traces captured after the last pipeline's data snapshot (all, before the first)
    last_started_at: float | None = None  # the last pipeline's start (None: there never was one)
    last_failed_at: float | None = None  # when the last pipeline failed, if its last run failed
    traces_since_failure: int = 0  # qualifying traces captured since that failed pipeline started
    last_event_at: float | None = None  # the last hook event
    running: str | None = None  # a pipeline that runs now (which one)


@dataclass(frozen=True)
class MachineState:
    gpu_free_bytes: int | None  # the free memory of the emptiest GPU; None: no GPU found
    on_battery: bool  # a laptop running on its battery
    free_disk_bytes: int
    needed_disk_bytes: int


@dataclass(frozen=True)
class Window:
    """A daily window in local time, [start, end); start > end crosses midnight; None is always."""

    start: time | None
    end: time | None

    @classmethod
    def parse(cls, text: str) -> "Window":
        if text == "always":
            return cls(None, None)
        start, end = (time.fromisoformat(part) for part in text.split("-"))
        return cls(start, end)

    def contains(self, now: datetime) -> bool:
        if self.start is None:
            return True
        t = now.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def next_start(self, now: datetime) -> datetime | None:
        """The next time the window opens after `now` (None for always)."""
        if self.start is None:
            return None
        at = now.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        return at if at > now else at + timedelta(days=1)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def decide(now: datetime, settings: LearningSettings, store: StoreState, machine: MachineState) -> Decision:
    """Run the pipeline now, or wait (with every reason)."""
    if not settings.enabled:
        return Decision(Action.WAIT, [Reason("enabled", "learning is turned off ([learning] enabled = false)")])
    ts = now.timestamp()
    waiting: list[Reason] = []
    window = Window.parse(settings.window)
    next_window = None
    if not window.contains(now):
        next_window = window.next_start(now)
        waiting.append(Reason("window", f"outside the window {settings.window} (opens {next_window:%a %H:%M})"))
    first = store.last_started_at is None
    needed = settings.min_first_traces if first else settings.min_new_traces
    if store.new_traces < needed:
        kind = "qualifying traces before the first pipeline" if first else "new qualifying traces"
        waiting.append(Reason("new_traces", f"{needed - store.new_traces} more {kind} "
                                            f"({store.new_traces} of {needed})"))
    if not first and ts - store.last_started_at < settings.min_interval_h * 3600:
        waiting.append(Reason("interval", f"the last pipeline started {_hours(ts - store.last_started_at)} ago "
                                          f"(min_interval_h {settings.min_interval_h:g})"))
    if store.running:
        waiting.append(Reason("running", f"{store.running} is running"))
    if (store.last_failed_at is not None and store.traces_since_failure == 0
            and ts - store.last_failed_at < settings.retry_after_h * 3600):
        waiting.append(Reason("retry", f"the last pipeline failed {_hours(ts - store.last_failed_at)} ago with no "
                                       f"new data since (retry_after_h {settings.retry_after_h:g})"))
    if not settings.allow_cpu:
        need = settings.min_gpu_free_gb * GB
        if machine.gpu_free_bytes is None:
            waiting.append(Reason("gpu", "no GPU found (allow_cpu = true trains on the CPU)"))
        elif machine.gpu_free_bytes < need:
            waiting.append(Reason("gpu", f"{machine.gpu_free_bytes / GB:.1f} GB GPU memory free "
                                         f"(min_gpu_free_gb {settings.min_gpu_free_gb:g})"))
    if store.last_event_at is not None and ts - store.last_event_at < settings.idle_min * 60:
        waiting.append(Reason("idle", f"Claude Code was used {(ts - store.last_event_at) / 60:.0f} min ago "
                                      f"(idle_min {settings.idle_min:g})"))
    if machine.on_battery and not settings.allow_battery:
        waiting.append(Reason("power", "on battery (allow_battery = true runs anyway)"))
    if machine.free_disk_bytes < machine.needed_disk_bytes:
        waiting.append(Reason("disk", f"{machine.free_disk_bytes / GB:.1f} GB disk free, the run needs "
                                      f"{machine.needed_disk_bytes / GB:.1f} GB"))
    if waiting:
        return Decision(Action.WAIT, waiting, next_window)
    what = "qualifying traces" if first else "new qualifying traces"
    return Decision(Action.RUN, [Reason("new_traces", f"{store.new_traces} {what} (≥ {needed})")])
