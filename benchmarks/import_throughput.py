"""Transcript import throughput (MB/s) against plain `json.loads` over the same lines, and memory.

The corpus is made from the real transcripts in ../shared/transcripts (every layout), copied
with fresh session, message, tool and line ids until it reaches --mb. In the same run:
  baseline: `json.loads` of every line, no store (the faster of a run before and one after);
  import:   `ccd import`'s importer into a fresh database, as `ccd import` runs it (worker
            processes read, parse and redact ahead: one per core, at most 4) and in one process.
Memory: the importer runs in fresh processes on corpora of --mb / 5 and --mb; peak RSS (of the
importing process, and of the largest worker) should not grow with the corpus (streaming, no
whole-file reads).
Goals: import >= 0.5x of bare parsing, and >= 50 MB/s.

    python benchmarks/import_throughput.py [--mb 500]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cc_capture.transcripts.bulk import default_workers

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO.parent / "shared" / "transcripts"


def make_corpus(root: Path, mb: int, distinct_text: bool = False) -> int:
    """Copies of every fixture session, each under fresh ids; returns bytes written. With
    `distinct_text`, each copy's sentences also end in a word of their own (its tag, before each
    ". "), so no sentence repeats between copies: the copies alone would repeat every one, which
    flatters whatever remembers sentences (real transcripts repeat about 4% of theirs)."""
    sessions = [p for p in SOURCE.rglob("*.jsonl") if p.parent.name != "subagents"]
    total, k = 0, 0
    while total < mb * 1_000_000:
        for main in sessions:
            k += 1
            tag = f"c{k:05d}".encode()
            project = root / f"-corpus-{k % 50:02d}"
            files = [main] + sorted((main.with_suffix("") / "subagents").glob("*"))
            sid = main.stem.encode()
            for f in files:
                data = f.read_bytes()
                for old in (b'"uuid":"', b'"parentUuid":"', b'"promptId":"', b'"id":"msg_', b'"toolu_', b'"id":"toolu_',
                            b'"tool_use_id":"toolu_', b'toolUseId":"toolu_'):
                    data = data.replace(old, old + tag)
                data = data.replace(sid, sid[:-6] + tag + b"x")
                if distinct_text:
                    data = data.replace(b". ", b" " + tag + b". ")
                rel = f.relative_to(main.parent)
                target = project / str(rel).replace(main.stem, main.stem[:-6] + f"c{k:05d}x")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                total += len(data)
    return total


def bare_parse(root: Path) -> float:
    t0 = time.perf_counter()
    for f in root.rglob("*.jsonl"):
        with open(f, "rb") as fh:
            for line in fh:
                json.loads(line)
    return time.perf_counter() - t0


IMPORT_CHILD = """
import resource, sys, time
from pathlib import Path
from cc_capture import store
from cc_capture.transcripts.bulk import import_paths
db = store.connect(Path(sys.argv[2]))
t0 = time.perf_counter()
stats = import_paths(db, [Path(sys.argv[1])], workers=int(sys.argv[3]))
print(time.perf_counter() - t0, stats.bytes, stats.traces, stats.tool_calls, len(stats.failed),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@dataclass
class ImportRun:
    seconds: float
    bytes: int
    traces: int
    tool_calls: int
    rss_kb: int
    worker_rss_kb: int


def run_import(root: Path, db: Path, workers: int) -> ImportRun:
    out = subprocess.run([sys.executable, "-c", IMPORT_CHILD, str(root), str(db), str(workers)], capture_output=True,
                         text=True, check=True).stdout.split()
    if int(out[4]):
        raise SystemExit(f"{out[4]} sessions failed to import")
    return ImportRun(float(out[0]), int(out[1]), int(out[2]), int(out[3]), int(out[5]), int(out[6]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=500)
    mb = ap.parse_args().mb
    workers = default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small", Path(tmp) / "big"
        small_bytes = make_corpus(small, max(1, mb // 5))
        big_bytes = make_corpus(big, mb)
        bare = bare_parse(big)
        parallel = run_import(big, Path(tmp) / "parallel.db", workers)
        serial = run_import(big, Path(tmp) / "serial.db", 0)
        small_run = run_import(small, Path(tmp) / "small.db", workers)
        bare = min(bare, bare_parse(big))
        shutil.rmtree(big)
    print(f"corpus {big_bytes / 1e6:.0f} MB ({parallel.traces:,} traces, {parallel.tool_calls:,} tool calls) made from "
          f"the real fixtures, {os.cpu_count()} cores:")
    print(f"  baseline json.loads of every line: {big_bytes / 1e6 / bare:7.1f} MB/s")
    for label, run in ((f"import, {workers} worker{'s' * (workers != 1)} (ccd import)", parallel),
                       ("import, one process", serial)):
        print(f"  {label:34s} {run.bytes / 1e6 / run.seconds:7.1f} MB/s = {bare / run.seconds:.2f}x of bare parsing "
              f"(goals: >= 0.5x, >= 50 MB/s)")
    print(f"  peak RSS, importing process: {small_run.rss_kb / 1024:.0f} MB on {small_bytes / 1e6:.0f} MB, "
          f"{parallel.rss_kb / 1024:.0f} MB on {big_bytes / 1e6:.0f} MB ({parallel.rss_kb / small_run.rss_kb:.2f}x for "
          f"{big_bytes / small_bytes:.1f}x the corpus); largest worker: {small_run.worker_rss_kb / 1024:.0f} MB, "
          f"{parallel.worker_rss_kb / 1024:.0f} MB; one process: {serial.rss_kb / 1024:.0f} MB")


if __name__ == "__main__":
    main()
