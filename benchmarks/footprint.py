"""Start-up and footprint as a user meets them, whole processes against their baselines, in one run:

  `ccd status` (and `--json`): wall time of the whole command, against the bare interpreter's
      start-up (`python -c pass`); medians of --runs. Goal: under 0.15 s.
  the idle daemon: resident memory (VmRSS) of `ccd daemon run` once it has settled with nothing to
      do, against a bare interpreter that imported sqlite3. Goal: under 50 MB.
  `ccd import`: the whole command as a process (start-up, import, signals, exit) over a corpus made
      from the real fixtures (as benchmarks/import_throughput.py makes it), against bare
      `json.loads` of every line of the same files in one process. Goal: at least 0.5x. The
      copies repeat every sentence of the fixtures, which flatters the signals' memory of
      sentences met before; --distinct-text gives each copy sentences of its own.

Run it in the environment a learning user has (`./install.sh --train`: pandas, numpy and torch
installed); it says whether they are. Each checkout's bytecode is written first, as installing it
does (pip compiles every module): where none is written (PYTHONDONTWRITEBYTECODE, as on the
development machine), every process would otherwise compile cc_capture's modules from source,
about 0.15 s each that no installed copy pays. With --before DIR (another checkout of cc-capture: the code
before a change), that checkout's `ccd import` is timed too, on the same corpus, in turn with this
one's (--import-runs each, medians): on a machine other work keeps busy, the CPU times of the two
are the fair comparison.

    python benchmarks/footprint.py [--mb 152] [--runs 15] [--import-runs 1] [--before DIR] [--distinct-text]
"""

from __future__ import annotations

import argparse
import compileall
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


def timed(args: list[str], env: dict, cwd: Path | None = None) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, its worker processes included) of a whole process, and its output."""
    c0, t0 = cpu_s(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         check=True).stdout
    return time.perf_counter() - t0, cpu_s(resource.RUSAGE_CHILDREN) - c0, out


def own_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a running process has used itself, its children apart."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_import(args: list[str], env: dict, cwd: Path) -> tuple[float, float, float, str]:
    """`timed`, and the CPU seconds of the importing process alone (the store's only writer; the
    rest is its workers'), sampled every 20 ms until it ends."""
    c0, t0 = cpu_s(resource.RUSAGE_CHILDREN), time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL, text=True)
        own = 0.0
        while proc.poll() is None:
            try:
                own = own_cpu_s(proc.pid)
            except (OSError, IndexError):  # it ended between the two looks
                pass
            time.sleep(0.02)
        if proc.returncode:
            raise SystemExit(f"{args} failed ({proc.returncode})")
        out.seek(0)
        return time.perf_counter() - t0, cpu_s(resource.RUSAGE_CHILDREN) - c0, own, out.read()


def import_runs(checkouts: list[Path], corpus: Path, home: Path, runs: int) -> list[tuple[float, float, float, dict]]:
    """Median wall and CPU seconds (all its processes, and the importing process's own) of each
    checkout's whole `ccd import` of the corpus, the checkouts in turn, and its summary (--json).
    The first run of the first checkout imports into `home` (the store `ccd status` is timed on
    afterwards), every other one into a fresh copy of it."""
    times: list[list[tuple[float, float, float]]] = [[] for _ in checkouts]
    stats: list[dict] = [{} for _ in checkouts]
    for k in range(runs):
        for i, checkout in enumerate(checkouts):
            into = home if (i, k) == (0, 0) else home.with_name(f"{home.name}-{i}-{k}")
            if into != home:
                into.mkdir(mode=0o700)
                (into / "config.toml").write_bytes((home / "config.toml").read_bytes())
            env = dict(os.environ, CC_CAPTURE_HOME=str(into), PYTHONPATH=str(checkout))
            w, c, own, out = timed_import([sys.executable, "-m", "cc_capture", "import", str(corpus), "--json"], env,
                                          checkout)
            times[i].append((w, c, own))
            stats[i] = json.loads(out)
    return [(*(statistics.median(r[k] for r in t) for k in range(3)), s) for t, s in zip(times, stats)]


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
    ap.add_argument("--import-runs", type=int, default=1, help="whole `ccd import` runs (of each checkout)")
    ap.add_argument("--before", type=Path, help="another checkout whose `ccd import` is timed too, in turn")
    ap.add_argument("--distinct-text", action="store_true",
                    help="no sentence repeats between the corpus's copies of the fixtures (import_throughput.make_corpus)")
    a = ap.parse_args()
    py = sys.executable
    extra = [m for m in ("pandas", "numpy", "torch", "transformers") if importlib.util.find_spec(m)]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; installed: "
          f"{', '.join(extra) or 'none of pandas, numpy, torch, transformers'}")
    for checkout in [REPO] + ([a.before.resolve()] if a.before else []):
        compileall.compile_dir(checkout / "cc_capture", quiet=1)  # as an install does (see above)
    with tempfile.TemporaryDirectory() as tmp:
        corpus, home = Path(tmp) / "corpus", Path(tmp) / "cch"
        roots = Path(tmp) / "no-transcripts"
        roots.mkdir()
        home.mkdir(mode=0o700)
        (home / "config.toml").write_text(f"[capture]\ntranscript_roots = [{json.dumps(str(roots))}]\n")
        env = dict(os.environ, CC_CAPTURE_HOME=str(home))
        size = make_corpus(corpus, a.mb, a.distinct_text)
        files = sum(1 for _ in corpus.rglob("*.jsonl"))
        bare = bare_cpu(corpus)
        imports = import_runs([REPO] + ([a.before.resolve()] if a.before else []), corpus, home, a.import_runs)
        stats = imports[0][3]
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
          f"{stats['tool_calls']:,} tool calls, signals included: {stats['qualifying']:,} qualify; "
          f"{'no sentence repeats between copies' if a.distinct_text else 'copies repeat every sentence'}), "
          "wall / CPU of all its processes:")
    print(f"  baseline json.loads of every line: {size / 1e6 / bare[0]:6.1f} MB/s ({bare[0]:.2f} s / {bare[1]:.2f} s)")
    for label, (w, c, own, summary) in zip(("ccd import:", f"ccd import of {a.before}:"), imports):
        print(f"  {label:34s} {size / 1e6 / w:6.1f} MB/s ({w:.2f} s / {c:.2f} s) = {bare[0] / w:.2f}x of bare parsing "
              f"(goal >= 0.5x); CPU {bare[1] / c:.2f}x" + ("" if summary == stats else "; NOT THE SAME SUMMARY"))
        print(f"  {'':34s} of which the importing process {own:.2f} s (its wall time is at least that: "
              f"{bare[1] / own:.2f}x of bare parsing's CPU), its workers {c - own:.2f} s")
    if a.import_runs > 1:
        print(f"  (ccd import: medians of {a.import_runs} runs)")


if __name__ == "__main__":
    main()
