"""Start-up and footprint as a user meets them, whole processes against their baselines, in one run:

  `ccd status` (and `--json`): wall time of the whole command, against the bare interpreter's
      start-up (`python -c pass`); medians of --runs. Goal: under 0.15 s.
  the idle daemon: resident memory (VmRSS) of `ccd daemon run` once it has settled with nothing to
      do, against a bare interpreter that imported sqlite3. Goal: under 50 MB.
  `ccd import`: the whole command as a process (start-up, import, signals, exit) over a corpus made
      from the real fixtures (as benchmarks/import_throughput.py makes it), against bare
      `json.loads` of every line of the same files in one process. Goal: at least 0.5x.

Run it in the environment a learning user has (`./install.sh --train`: pandas, numpy and torch
installed); it says whether they are.

    python benchmarks/footprint.py [--mb 152] [--runs 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from import_throughput import bare_parse, make_corpus  # noqa: E402


def cpu_s(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def timed(args: list[str], env: dict) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, its worker processes included) of a whole process, and its output."""
    c0, t0 = cpu_s(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True).stdout
    return time.perf_counter() - t0, cpu_s(resource.RUSAGE_CHILDREN) - c0, out


def wall(args: list[str], env: dict, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of a whole process."""
    runs_ = [timed(args, env)[:2] for _ in range(runs)]
    return statistics.median(r[0] for r in runs_), statistics.median(r[1] for r in runs_)


def bare_cpu(root: Path) -> tuple[float, float]:
    """bare_parse's wall and CPU seconds."""
    c0 = cpu_s(resource.RUSAGE_SELF)
    seconds = bare_parse(root)
    return seconds, cpu_s(resource.RUSAGE_SELF) - c0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def settled_rss(args: list[str], env: dict, ready, settle_s: float = 3.0) -> float:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not ready():
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit(f"{args} did not start")
            time.sleep(0.05)
        time.sleep(settle_s)
        return rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=152)
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    py = sys.executable
    extra = [m for m in ("pandas", "numpy", "torch", "transformers") if importlib.util.find_spec(m)]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; installed: "
          f"{', '.join(extra) or 'none of pandas, numpy, torch, transformers'}")
    with tempfile.TemporaryDirectory() as tmp:
        corpus, home = Path(tmp) / "corpus", Path(tmp) / "cch"
        roots = Path(tmp) / "no-transcripts"
        roots.mkdir()
        home.mkdir(mode=0o700)
        (home / "config.toml").write_text(f"[capture]\ntranscript_roots = [{json.dumps(str(roots))}]\n")
        env = dict(os.environ, CC_CAPTURE_HOME=str(home))
        size = make_corpus(corpus, a.mb)
        files = sum(1 for _ in corpus.rglob("*.jsonl"))
        bare = bare_cpu(corpus)
        whole = timed([py, "-m", "cc_capture", "import", str(corpus), "--json"], env)
        stats = json.loads(whole[2])
        bare = min(bare, bare_cpu(corpus))

        start = wall([py, "-c", "pass"], env, a.runs)
        status_json = wall([py, "-m", "cc_capture", "status", "--json"], env, a.runs)
        status_human = wall([py, "-m", "cc_capture", "status"], env, a.runs)

        base_rss = settled_rss([py, "-c", "import sqlite3, time; time.sleep(600)"], env, lambda: True)
        daemon_rss = settled_rss([py, "-m", "cc_capture", "daemon", "run"], env, (home / "ccd.pid").exists)

    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} cores at the end: wall times stretch on a busy machine; "
          "CPU times much less)")
    print(f"ccd status, whole process (median of {a.runs}; {stats['traces']:,} traces in the store), wall / CPU:")
    print(f"  baseline python -c pass: {start[0] * 1000:6.0f} ms / {start[1] * 1000:4.0f} ms")
    for label, (w, c) in (("ccd status --json", status_json), ("ccd status", status_human)):
        print(f"  {label + ':':24s} {w * 1000:6.0f} ms / {c * 1000:4.0f} ms = {w / start[0]:.1f}x the bare start-up "
              f"(goal < 150 ms)")
    print("idle daemon, resident memory:")
    print(f"  baseline python + sqlite3: {base_rss:5.1f} MB")
    print(f"  ccd daemon run:            {daemon_rss:5.1f} MB = {daemon_rss / base_rss:.1f}x (goal < 50 MB)")
    print(f"ccd import, whole process, {size / 1e6:.0f} MB in {files:,} files ({stats['traces']:,} traces, "
          f"{stats['tool_calls']:,} tool calls, signals included: {stats['qualifying']:,} qualify), wall / CPU "
          "of all its processes:")
    print(f"  baseline json.loads of every line: {size / 1e6 / bare[0]:6.1f} MB/s ({bare[0]:.2f} s / {bare[1]:.2f} s)")
    print(f"  ccd import:                        {size / 1e6 / whole[0]:6.1f} MB/s ({whole[0]:.2f} s / {whole[1]:.2f} s) "
          f"= {bare[0] / whole[0]:.2f}x of bare parsing (goal >= 0.5x); CPU {bare[1] / whole[1]:.2f}x")


if __name__ == "__main__":
    main()
