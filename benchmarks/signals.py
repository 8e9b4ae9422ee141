"""Signal extraction: accuracy on labelled real sentences, and throughput on one core.

Accuracy: precision and recall per phrase signal, with 95% Wilson intervals and the count of
positives behind each, on tests/fixtures/signals/ (1,259 real Claude Code assistant sentences
labelled by meaning under LABELLING.md before any detector ran on them), reported apart for
the "dev" split (sessions the detectors may be tuned on) and the "heldout" split (sessions
never tuned on: only reported). A signal with fewer than 20 positives in a split gets no
headline figure (shown in parentheses). The older set tests/fixtures/signals_labelled.jsonl
is printed last: its figures are in-sample (its patterns were widened until it passed).
Goal on held-out: precision >= 0.8 and recall >= 0.7 for constraint, pruning, self-correction,
validation, plan, assumption; precision >= 0.7 and recall >= 0.5 for counterfactual,
self-critique, preference.
Throughput: traces/s for load + extract + vector + gate + store, against loading the same
traces from the store alone, in the same run. Goal: at least 1,000 traces/s.

    python benchmarks/signals.py [--events 20000] [--no-throughput]
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
from cc_capture.signals.evaluate import Score, Sentence, load, score  # noqa: E402
from cc_capture.signals.runner import compute, load_views, stale  # noqa: E402

SET = REPO / "tests" / "fixtures" / "signals"
GOALS = {k: (0.8, 0.7) for k in ("constraint", "pruning", "self_correction", "validation", "plan", "assumption")}
GOALS |= {k: (0.7, 0.5) for k in ("counterfactual", "self_critique", "preference")}


def _cell(value: float | None, interval: tuple[float, float] | None) -> str:
    if value is None or interval is None:
        return "-"
    return f"{value:.2f} [{interval[0]:.2f}-{interval[1]:.2f}]"


def _row(kind: str, s: Score) -> str:
    p, r = _cell(s.precision, s.precision_interval), _cell(s.recall, s.recall_interval)
    if not s.headline:
        p, r = f"({p})", f"({r})"
    goal = GOALS.get(kind)
    met = "" if goal is None or not s.headline else (
        "  meets goal" if (s.precision or 0) >= goal[0] and (s.recall or 0) >= goal[1] else "  below goal")
    return f"  {kind:16s} {s.positives:4d} {s.tp + s.fp:5d}  {p:>20s}  {r:>20s}{met}"


def report(title: str, rows: list[Sentence], groups: str = "sessions") -> None:
    print(f"{title}: {len(rows)} sentences, {len({r.session for r in rows})} {groups}")
    print(f"  {'signal':16s} {'pos':>4s} {'found':>5s}  {'precision [95% CI]':>20s}  {'recall [95% CI]':>20s}")
    for kind, s in score(rows, phrases.KINDS, phrases.detect).items():
        print(_row(kind, s))


def accuracy() -> None:
    rows = load(SET)
    report("untuned (held-out) split, only reported", [r for r in rows if r.split == "heldout"])
    report("tuned-on (dev) split", [r for r in rows if r.split == "dev"])
    old = [json.loads(line) for line in (REPO / "tests" / "fixtures" / "signals_labelled.jsonl").read_text().splitlines()]
    report("older set, in-sample (tests/fixtures/signals_labelled.jsonl)",
           [Sentence(str(i), r["text"], r["source"], r["source"], frozenset(r["labels"])) for i, r in enumerate(old)],
           "sources")
    print("  (figures in parentheses: fewer than 20 positives, no headline figure)")


def throughput(events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp) / "cch").ensure()
        generate(paths.journal, events)
        ingest_once(paths, Settings())
        db = store.connect(paths.db)
        ids = stale(db, everything=True)
        t0 = time.perf_counter()
        load_views(db, ids)
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
    ap.add_argument("--no-throughput", action="store_true", help="accuracy only")
    args = ap.parse_args()
    accuracy()
    if not args.no_throughput:
        throughput(args.events)


if __name__ == "__main__":
    main()
