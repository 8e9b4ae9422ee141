"""Dataset build on the real transcripts of ../shared: loading its traces through the read model
in batches against one trace at a time, and the whole build.

The store is made by importing ../shared/transcripts and ../shared/transcripts-more (signals
included), then, in the same run:
  baseline: every qualifying and rated trace loaded one at a time (`reads.trace`, six queries per
            trace: the access pattern `ccd dataset build` had before the read model);
  batched:  the same traces loaded as `ccd dataset build` loads them now (`reads.traces`: six
            queries per 500 traces);
  build:    the whole `dataset build` (SFT, then DPO), writing JSONL and the Hugging Face folder.
Each figure is the median of --repeats runs, in CPU seconds of this process (wall seconds beside:
on a shared machine wall time mostly measures the other processes).

    python benchmarks/dataset_build.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cc_capture import reads, store  # noqa: E402
from cc_capture.config import Paths, Settings, SystemPromptChoice  # noqa: E402
from cc_capture.datasets.build import build  # noqa: E402
from cc_capture.pipeline.transcripts import import_transcripts  # noqa: E402
from cc_capture.transcripts.discovery import discover  # noqa: E402


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) of `repeats` calls."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    shared = REPO.parent / "shared"
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp) / "cch").ensure()
        db = store.connect(paths.db)
        import_transcripts(db, discover([shared / "transcripts", shared / "transcripts-more"]), Settings())
        ids = [r[0] for r in db.execute(
            "SELECT t.trace_id FROM traces t JOIN signals s USING (trace_id) WHERE s.qualifies = 1 "
            "UNION SELECT trace_id FROM feedback")]
        (traces,) = db.execute("SELECT count(*) FROM traces").fetchone()
        (calls,) = db.execute("SELECT count(*) FROM tool_calls c JOIN signals s USING (trace_id) "
                              "WHERE s.qualifies = 1").fetchone()
        print(f"store: {traces} traces imported from ../shared; {len(ids)} qualifying with {calls} tool calls")
        one = timed(lambda: [reads.trace(db, t) for t in ids], args.repeats)
        batched = timed(lambda: reads.traces(db, ids), args.repeats)
        print(f"  baseline, one trace at a time: {one[0]:.3f} s CPU ({one[1]:.3f} s wall)")
        print(f"  batched (the read model):      {batched[0]:.3f} s CPU ({batched[1]:.3f} s wall) "
              f"= {one[0] / batched[0]:.2f}x faster")
        settings = Settings().datasets
        for dpo in (False, True):
            whole = timed(lambda: build(db, paths.datasets, settings, SystemPromptChoice.COMPACT, dpo=dpo),
                          args.repeats)
            print(f"  dataset build {'--dpo' if dpo else '(SFT)'}: {whole[0]:.3f} s CPU ({whole[1]:.3f} s wall)")


if __name__ == "__main__":
    main()
