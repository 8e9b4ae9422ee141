"""Small probes of the machine for the scheduler: free GPU memory, mains power, free disk.

None of them imports torch (the daemon must stay light): the GPU is asked through NVML
(`nvidia-ml-py`, when installed) or `nvidia-smi`; power through Linux's
/sys/class/power_supply or macOS's `pmset -g batt`. A probe that cannot tell returns the
answer that blocks nothing it cannot see (no battery found: on mains).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from cc_capture.config import LearningSettings, Paths, TrainSettings
from cc_capture.scheduler.decide import GB, MachineState

POWER_SUPPLY = Path("/sys/class/power_supply")
PROBE_TIMEOUT_S = 10


def _nvml_free() -> list[int] | None:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # the library is installed but there is no driver
        return None
    try:
        return [pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).free
                for i in range(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()


def _nvidia_smi_free() -> list[int] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=memory.free", "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=PROBE_TIMEOUT_S, check=True).stdout
        return [int(float(line)) << 20 for line in out.split() if line.strip()]  # MiB
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def gpu_free_bytes() -> int | None:
    """Free memory of the GPU with the most free (None: no NVIDIA GPU could be asked)."""
    free = _nvml_free() or _nvidia_smi_free()
    return max(free) if free else None


def on_battery(power_supply: Path = POWER_SUPPLY, platform: str = sys.platform) -> bool:
    """Whether this machine runs on its battery now (a desktop has none: False)."""
    if platform == "darwin":
        try:
            out = subprocess.run(["pmset", "-g", "batt"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S).stdout
        except (OSError, subprocess.SubprocessError):
            return False
        return "'Battery Power'" in out
    mains_online = battery_discharging = False
    for supply in power_supply.glob("*"):
        def read(name: str) -> str:
            try:
                return (supply / name).read_text().strip()
            except OSError:
                return ""
        kind = read("type")
        if kind in ("Mains", "USB", "USB_C", "USB_PD") and read("online") == "1":
            mains_online = True
        if kind == "Battery" and read("scope") != "Device" and read("status") == "Discharging":
            battery_discharging = True
    return battery_discharging and not mains_online


def model_bytes(base_model: str) -> int:
    """The size on disk of the base model: a local folder, else its Hugging Face cache (0 if neither)."""
    path = Path(base_model).expanduser()
    if not path.exists():
        hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache"
                                                                           / "huggingface")) / "hub")
        path = hub / ("models--" + base_model.replace("/", "--")) / "blobs"
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def machine_state(paths: Paths, learning: LearningSettings, train: TrainSettings) -> MachineState:
    """Probe the machine now (the GPU only when it matters)."""
    needed = max(int(learning.min_free_disk_gb * GB), int(learning.disk_per_base_model * model_bytes(train.base_model)))
    return MachineState(
        gpu_free_bytes=None if learning.allow_cpu else gpu_free_bytes(),
        on_battery=False if learning.allow_battery else on_battery(),
        free_disk_bytes=shutil.disk_usage(paths.home).free,
        needed_disk_bytes=needed,
    )
