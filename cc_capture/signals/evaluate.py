"""Measure sentence-level signal detectors against a labelled set, with 95% intervals.

The set is tests/fixtures/signals/: sentences.jsonl (real assistant sentences, each with a fixed
split: "dev" may be tuned on, "heldout" is only reported) and labels.jsonl (labels by meaning,
written by a person following LABELLING.md before any detector ran on them). Nothing here is
imported by the daemon; benchmarks/signals.py and the tests use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cc_capture.signals.classify import Context

MIN_POSITIVES = 20  # below this a signal gets no headline figure


@dataclass(frozen=True)
class Sentence:
    id: str
    text: str
    split: str
    session: str
    labels: frozenset[str]
    context: Context = Context()  # where it stood in its transcript (the classifier reads it)
    batch: int = 1  # 1: the first sample (the v2 detectors were tuned on its dev part); 2, 3: drawn later


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.positives if self.positives else None

    @property
    def precision_interval(self) -> tuple[float, float] | None:
        return wilson(self.tp, self.tp + self.fp)

    @property
    def recall_interval(self) -> tuple[float, float] | None:
        return wilson(self.tp, self.positives)

    @property
    def headline(self) -> bool:
        return self.positives >= MIN_POSITIVES


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion (sound at 0 and 1 and for small counts)."""
    if not trials:
        return None
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def _labels(folder: Path) -> dict[str, list[str]]:
    return {r["id"]: r["labels"] for r in map(json.loads, (folder / "labels.jsonl").read_text().splitlines())}


def load(folder: Path) -> list[Sentence]:
    """The labelled sentences of the set, in id order. A sentence drawn but not labelled (a
    labeller's part not delivered) has no row in labels.jsonl and is left out: see unlabelled()."""
    labels = _labels(folder)
    rows = [json.loads(line) for line in (folder / "sentences.jsonl").read_text().splitlines()]
    return [Sentence(r["id"], r["text"], r["split"], r["session"], frozenset(labels[r["id"]]),
                     Context(r.get("after_error", False), r.get("next_call", "other"), r.get("before", "")),
                     r.get("batch", 1)) for r in rows if r["id"] in labels]


def unlabelled(folder: Path) -> list[str]:
    """Ids of the sentences drawn that have no label row (load() leaves them out)."""
    labelled = _labels(folder)
    return [r["id"] for r in map(json.loads, (folder / "sentences.jsonl").read_text().splitlines())
            if r["id"] not in labelled]


def score(rows: Iterable[Sentence], kinds: Iterable[str],
          detect: Callable[[str], dict[str, list[str]]]) -> dict[str, Score]:
    """tp/fp/fn per kind: a sentence counts as detected for a kind when detect() finds any."""
    return score_rows(rows, kinds, lambda row: {k for k, v in detect(row.text).items() if v})


def score_rows(rows: Iterable[Sentence], kinds: Iterable[str], found: Callable[[Sentence], set[str]]) -> dict[str, Score]:
    """tp/fp/fn per kind, from the kinds found() finds in each sentence (in its context)."""
    kinds = list(kinds)
    counts = {k: [0, 0, 0] for k in kinds}
    for row in rows:
        got_kinds = found(row)
        for k in kinds:
            got, want = k in got_kinds, k in row.labels
            if got or want:
                counts[k][0 if got and want else 1 if got else 2] += 1
    return {k: Score(*c) for k, c in counts.items()}
