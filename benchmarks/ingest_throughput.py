"""Ingest throughput (events/s, one process) against bare reading + JSON parsing of the same records.

Generates a journal of realistic events (the recorded 2.1.328 session, with fresh ids, one in
ten carrying a secret so the redaction slow path is exercised), then in the same run times:
  baseline: list + read + msgspec.json.decode every record (no store);
  ingest:   one ingest pass as `ccd ingest` and the daemon run it into a fresh database: its
            journal step (redact, assemble, commit, delete), and the whole pass (then the
            closed traces' signals).
Goal: at least 5,000 events/s on one core.

    python benchmarks/ingest_throughput.py [--events 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import msgspec

from cc_capture import journal, store
from cc_capture.config import Paths, Settings
from cc_capture.pipeline.ingest import ingest_once

REPO = Path(__file__).resolve().parent.parent
ORDER = [
    "UserPromptSubmit", "PreToolUse_Bash", "PostToolUse_Bash", "PostToolBatch_single_Bash",
    "PreToolUse_parallel_Glob", "PreToolUse_parallel_Grep", "PostToolUse_parallel_Glob", "PostToolUse_parallel_Grep",
    "PostToolBatch_parallel_Glob_Grep", "PreToolUse_Bash_exit1", "PostToolUseFailure_Bash_exit1",
    "PostToolBatch_Bash_exit1", "Stop",
]


def generate(journal_dir: Path, n: int) -> int:
    """Write n records in the emitter's format; returns bytes written."""
    payloads = [json.loads((REPO.parent / "shared" / "payloads" / f"{name}.json").read_text()) for name in ORDER]
    journal_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    i = 0
    while i < n:
        prompt_id, session = str(uuid.uuid4()), str(uuid.uuid4())
        ids = {}
        for p in payloads:
            if i >= n:
                break
            p = dict(p, prompt_id=prompt_id, session_id=session)
            for key in ("tool_use_id",):
                if key in p:
                    p[key] = ids.setdefault(p[key], "toolu_" + uuid.uuid4().hex[:20])
            if "tool_calls" in p:
                p["tool_calls"] = [dict(c, tool_use_id=ids.setdefault(c["tool_use_id"], "toolu_" + uuid.uuid4().hex[:20]))
                                   for c in p["tool_calls"]]
            if i % 10 == 0 and "tool_input" in p:
                p["tool_input"] = dict(p["tool_input"], command="export GITHUB_TOKEN=ghp_" + "a1B2" * 9)
            data = msgspec.json.encode(p) + journal.END_MARKER
            (journal_dir / f"{i}-0.ev").write_bytes(data)
            total += len(data)
            i += 1
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    n = ap.parse_args().events
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp) / "cch").ensure()
        size = generate(paths.journal, n)

        t0 = time.perf_counter()
        for f in journal.list_files(paths.journal):
            rec = journal.read(paths.journal, f, 1 << 30)
            msgspec.json.decode(rec.payload)
        bare = time.perf_counter() - t0

        t0 = time.perf_counter()
        done = ingest_once(paths, Settings())
        real = time.perf_counter() - t0
        result = done.journal
        assert result.ingested == n and result.quarantined == 0, result
        db = store.connect(paths.db)
        traces = db.execute("SELECT count(*) FROM traces").fetchone()[0]
    print(f"{n} events ({size / 1e6:.1f} MB, {traces} traces), one process (pid {os.getpid()}):")
    print(f"  baseline read + parse: {n / bare:10,.0f} events/s")
    print(f"  ingest (redact, assemble, commit, delete): {n / done.journal_s:10,.0f} events/s "
          f"= {bare / done.journal_s:.2f}x of bare parsing (goal >= 5,000 events/s)")
    print(f"  the whole pass, signals of {done.signals.computed} traces included: {n / real:10,.0f} events/s "
          f"= {bare / real:.2f}x")

if __name__ == "__main__":
    main()
