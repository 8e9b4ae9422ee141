"""The idle daemon with the learning scheduler on, against the same daemon with it off, in one run:

  CPU seconds (user + system, from /proc/PID/stat) the settled daemon uses over --seconds with
  nothing to ingest, and its resident memory (VmRSS) at the end; with `[learning] enabled = false`
  (baseline: no scheduler thread, one recorded decision), with the defaults (a check every 15 min,
  so usually none inside the measurement), and with a check every 0.1 min (the cost of checks
  themselves). Also whether torch or transformers is mapped into the daemon (it must not be).

    python benchmarks/scheduler_idle.py [--seconds 60] [--settle 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(config: str, seconds: float, settle: float) -> dict:
    with tempfile.TemporaryDirectory() as home:
        Path(home, "config.toml").write_text(config)
        env = dict(os.environ, CC_CAPTURE_HOME=home)
        proc = subprocess.Popen([sys.executable, "-m", "cc_capture", "daemon", "run"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while not Path(home, "ccd.pid").exists() or '"ready": true' not in Path(home, "ccd.pid").read_text():
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("the daemon did not become ready")
                time.sleep(0.1)
            time.sleep(settle)
            c0 = cpu_s(proc.pid)
            time.sleep(seconds)
            used = cpu_s(proc.pid) - c0
            maps = Path(f"/proc/{proc.pid}/maps").read_text()
            return {"cpu_s": used, "cpu_pct": 100 * used / seconds, "rss_mb": rss_mb(proc.pid),
                    "heavy_mapped": any(name in maps for name in ("torch", "transformers"))}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=10.0)
    args = ap.parse_args()
    no_roots = '[capture]\ntranscript_roots = []\n'  # nothing to import: the idle state only
    cases = {
        "scheduler off (baseline)": no_roots + "[learning]\nenabled = false\n",
        "scheduler on, defaults (check every 15 min)": no_roots,
        "scheduler on, a check every 6 s": no_roots + "[learning]\ncheck_interval_min = 0.1\n",
    }
    results = {name: measure(config, args.seconds, args.settle) for name, config in cases.items()}
    base = results["scheduler off (baseline)"]
    print(f"idle daemon over {args.seconds:g} s after {args.settle:g} s settling (load average "
          f"{os.getloadavg()[0]:.1f}):")
    for name, r in results.items():
        ratio = "" if r is base else (f"  ({r['rss_mb'] / base['rss_mb']:.2f}x RSS, "
                                       f"+{r['cpu_s'] - base['cpu_s']:.2f} s CPU vs off)")
        print(f"  {name:45s} CPU {r['cpu_s']:.2f} s ({r['cpu_pct']:.2f}%), RSS {r['rss_mb']:.1f} MB, "
              f"torch/transformers mapped: {'YES' if r['heavy_mapped'] else 'no'}{ratio}")


if __name__ == "__main__":
    main()
