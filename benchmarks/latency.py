"""Event-to-row latency with the daemon running: from the hook's exit to the row being queryable.

Runs the real emitter for each event (one every 20 ms) while a reader polls the database, and
reports p50/p95. The same run measures the emitter alone, as a baseline. Goal: p95 under 500 ms.

    python benchmarks/latency.py [--events 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cc_capture import daemon, store
from cc_capture.config import Paths

REPO = Path(__file__).resolve().parent.parent
EMITTER = REPO / "hooks" / "emit.sh"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300)
    n = ap.parse_args().events
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp) / "cch").ensure()
        daemon.start(paths)
        db = store.connect(paths.db)
        latencies, hook_times = [], []
        try:
            for i in range(n):
                payload = json.dumps({"hook_event_name": "UserPromptSubmit", "session_id": "lat",
                                      "prompt_id": f"p{i}", "prompt": f"event {i}"}).encode()
                t0 = time.perf_counter()
                subprocess.run(["sh", str(EMITTER), str(paths.home)], input=payload, check=True)
                t1 = time.perf_counter()
                while db.execute("SELECT 1 FROM traces WHERE trace_id = ?", (f"p{i}",)).fetchone() is None:
                    time.sleep(0.001)
                    if time.perf_counter() - t1 > 10:
                        raise SystemExit(f"event {i} not ingested within 10 s")
                latencies.append(time.perf_counter() - t1)
                hook_times.append(t1 - t0)
                time.sleep(0.02)
        finally:
            db.conn.close()
            daemon.stop(paths)
    ms = [x * 1000 for x in latencies]
    print(f"{n} events, daemon running, one every 20 ms:")
    print(f"  event-to-row latency p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms, max {max(ms):.1f} ms "
          f"(goal p95 < 500 ms)")
    print(f"  baseline, the hook itself: median {statistics.median(hook_times) * 1000:.1f} ms; "
          f"p95 latency = {pct(ms, 95) / (statistics.median(hook_times) * 1000):.1f}x one hook run")


if __name__ == "__main__":
    main()
