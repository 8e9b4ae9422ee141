"""Signal extraction: accuracy on the labelled set, and throughput on one core.

Accuracy: precision and recall per phrase signal over tests/fixtures/signals_labelled.jsonl,
per source ("written" by us, "transcript" = sentences of real Claude Code transcripts, and
"transcript-heldout" = real sentences labelled before the detectors had seen them; measured
first, they scored precision 1.0 and recall 1/7, and the detectors were widened afterwards,
so all columns here are now in-sample) and overall. Goal: at least 0.8 each.
Throughput: traces/s for load + extract + vector + gate + store, against loading the same
traces from the store alone, in the same run. Goal: at least 1,000 traces/s.

    python benchmarks/signals.py [--events 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from ingest_throughput import generate  # noqa: E402

from cc_capture import store  # noqa: E402
from cc_capture.config import GateSettings, Paths, Settings  # noqa: E402
from cc_capture.pipeline.ingest import ingest_once  # noqa: E402
from cc_capture.signals import phrases  # noqa: E402
from cc_capture.signals.runner import compute, load_view, stale  # noqa: E402


def accuracy() -> None:
    rows = [json.loads(l) for l in (REPO / "tests" / "fixtures" / "signals_labelled.jsonl").read_text().splitlines()]
    sources = sorted({r["source"] for r in rows}) + ["all"]
    print(f"phrase signals on {len(rows)} labelled sentences (precision / recall; goal >= 0.8):")
    print(f"  {'signal':16s}" + "".join(f"{s:>22s}" for s in sources))
    for kind in phrases.KINDS:
        cells = []
        for source in sources:
            tp = fp = fn = 0
            for r in rows:
                if source != "all" and r["source"] != source:
                    continue
                got = bool(phrases.detect(r["text"])[kind])
                want = kind in r["labels"]
                tp += got and want
                fp += got and not want
                fn += want and not got
            p = f"{tp / (tp + fp):.2f}" if tp + fp else "  - "
            rc = f"{tp / (tp + fn):.2f}" if tp + fn else "  - "
            cells.append(f"{p} / {rc} (n={tp + fn})")
        print(f"  {kind:16s}" + "".join(f"{c:>22s}" for c in cells))


def throughput(events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp) / "cch").ensure()
        generate(paths.journal, events)
        ingest_once(paths, Settings())
        db = store.connect(paths.db)
        ids = stale(db, everything=True)
        t0 = time.perf_counter()
        for trace_id in ids:
            load_view(db, trace_id)
        bare = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = compute(db, ids, GateSettings())
        full = time.perf_counter() - t0
    assert result.computed == len(ids) and not result.failed
    print(f"{len(ids)} traces ({events} events), one process:")
    print(f"  baseline, load from the store: {len(ids) / bare:8,.0f} traces/s")
    print(f"  load + extract + vector + gate + store: {len(ids) / full:8,.0f} traces/s "
          f"= {bare / full:.2f}x of loading alone (goal >= 1,000 traces/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    args = ap.parse_args()
    accuracy()
    throughput(args.events)


if __name__ == "__main__":
    main()
