"""The labelled redaction set: what a redactor removes from real transcripts, and whether it was a secret.

Every string of every line of the real transcripts in ../shared/transcripts and
../shared/transcripts-more is given to a detector (our redactor, or a scanner); each span it
would remove is an occurrence. Occurrences with the same source file, value and context (the
same text met again: an Edit's input and its echo) make one item. Items are labelled by
meaning, secret or not, following tests/fixtures/redaction/LABELLING.md, in
tests/fixtures/redaction/labelled.jsonl; the split (tuning or untuned) is fixed by the hash of
the session's file name, before any rule was changed.

    python benchmarks/redaction_set.py extract [--detector NAME ...]   # add unlabelled items
    python benchmarks/redaction_set.py report                          # precision/recall of ours

`benchmarks/redaction_compare.py` runs the scanners over the same set; tests/test_redaction_set.py
checks our figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CC_CAPTURE_SHARED", REPO.parent / "shared"))
ROOTS = ("transcripts", "transcripts-more")
LABELS = REPO / "tests" / "fixtures" / "redaction" / "labelled.jsonl"
CONTEXT = 60  # characters kept either side of an item, for the labeller
KEY_CONTEXT = 24  # characters either side that make an item's identity
_MARK_RE = re.compile(r"\[REDACTED:[a-z_]+\]")


def split_of(source: str) -> str:
    """`tuning` or `untuned`, fixed by the session file's name (a subagent goes with its session)."""
    parts = source.split("/")
    session = parts[-3] + ".jsonl" if len(parts) >= 3 and parts[-2] == "subagents" else parts[-1]
    return "tuning" if hashlib.sha256(session.encode()).hexdigest()[0] in "01234567" else "untuned"


@dataclass(frozen=True)
class Text:
    """One string of a transcript line: where it is, its JSON field name, and the text."""

    source: str  # e.g. transcripts-more/agentv/acc5....jsonl
    line: int
    path: str
    name: str | None
    text: str


def transcript_files() -> list[tuple[str, Path]]:
    return sorted((str(p.relative_to(SHARED)), p) for root in ROOTS for p in (SHARED / root).rglob("*.jsonl"))


def _walk(value, path: str, name: str | None) -> Iterator[tuple[str, str | None, str]]:
    if isinstance(value, str):
        yield path, name, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}", k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]", None)


def texts() -> Iterator[Text]:
    """Every string of every transcript line, in a fixed order."""
    for source, p in transcript_files():
        with p.open(encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                for path, name, text in _walk(doc, "$", None):
                    yield Text(source, n, path, name, text)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def spans_by_diff(original: str, redacted: str) -> list[Span]:
    """Where `redacted` put a marker in `original`: the original text between the kept pieces."""
    if redacted == original:
        return []
    pieces = _MARK_RE.split(redacted)
    if not original.startswith(pieces[0]) or not original.endswith(pieces[-1]):
        return [Span(0, len(original))]
    spans, pos = [], len(pieces[0])
    for i, piece in enumerate(pieces[1:], 1):
        if i == len(pieces) - 1:
            nxt = len(original) - len(piece)
        elif piece:
            nxt = original.find(piece, pos + 1)
            if nxt < 0:
                return spans + [Span(pos, len(original))]
        else:
            continue  # two markers side by side: one span
        spans.append(Span(pos, max(nxt, pos)))
        pos = nxt + len(piece)
    return spans


# A detector takes the texts and returns, for each, the spans it would remove.
Detector = Callable[[list[Text]], list[list[Span]]]


def ours() -> Detector:
    """Our redactor as the store applies it: a JSON string field by its name and its text."""
    from cc_capture.redact import redact_value

    def detect(corpus: list[Text]) -> list[list[Span]]:
        return [spans_by_diff(t.text, redact_value(t.text, t.name)) for t in corpus]

    return detect


@dataclass
class Item:
    id: str
    split: str
    source: str
    line: int
    path: str
    value: str
    before: str
    after: str
    label: str | None = None  # secret | personal (an e-mail address) | not_secret
    rule: str | None = None  # the labelling rule (LABELLING.md) that decided it
    found_by: list[str] = field(default_factory=list)  # detectors that flagged it when extracted
    occurrences: int = 1

    def row(self) -> dict:
        return {k: getattr(self, k) for k in ("id", "split", "label", "rule", "value", "before", "after", "source",
                                              "line", "path", "found_by", "occurrences")}


def item_id(source: str, text: str, span: Span) -> str:
    value = text[span.start:span.end]
    before = text[max(0, span.start - KEY_CONTEXT):span.start]
    after = text[span.end:span.end + KEY_CONTEXT]
    return hashlib.sha256("\x00".join((source, value, before, after)).encode()).hexdigest()[:16]


def load() -> dict[str, Item]:
    items: dict[str, Item] = {}
    if LABELS.exists():
        for line in LABELS.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            items[row["id"]] = Item(**row)
    return items


def save(items: dict[str, Item]) -> None:
    LABELS.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(items.values(), key=lambda i: (i.source, i.line, i.path, i.id))
    LABELS.write_text("".join(json.dumps(i.row(), ensure_ascii=False) + "\n" for i in rows), encoding="utf-8")


@dataclass
class Findings:
    """What one detector flagged: occurrences per item id, and the texts' size."""

    items: dict[str, int] = field(default_factory=dict)
    spans: dict[tuple[str, int, str], list[Span]] = field(default_factory=dict)
    new: dict[str, Item] = field(default_factory=dict)
    chars: int = 0


def run(detector: Detector, corpus: list[Text], known: dict[str, Item],
        found: list[list[Span]] | None = None) -> Findings:
    """What the detector flags in the corpus (or what it already `found` there), by item."""
    out = Findings()
    for t, spans in zip(corpus, found if found is not None else detector(corpus)):
        out.chars += len(t.text)
        spans = [s for s in spans if s.end > s.start]
        if not spans:
            continue
        out.spans[(t.source, t.line, t.path)] = spans
        for s in spans:
            iid = item_id(t.source, t.text, s)
            out.items[iid] = out.items.get(iid, 0) + 1
            if iid not in known and iid not in out.new:
                out.new[iid] = Item(iid, split_of(t.source), t.source, t.line, t.path, t.text[s.start:s.end],
                                    t.text[max(0, s.start - CONTEXT):s.start], t.text[s.end:s.end + CONTEXT])
    return out


POSITIVE = ("secret", "personal")  # labels a redactor is right to remove


def secret_occurrences(corpus: list[Text], items: dict[str, Item]) -> dict[str, list[tuple[tuple[str, int, str], Span]]]:
    """Where each item labelled secret or personal occurs: (source, line, path) and span, for recall."""
    wanted = {}
    for i in items.values():
        if i.label in POSITIVE:
            wanted.setdefault((i.source, i.value), []).append(i)
    where: dict[str, list] = {i.id: [] for i in items.values() if i.label in POSITIVE}
    for t in corpus:
        for (source, value), group in wanted.items():
            if t.source != source or value not in t.text:
                continue
            start = t.text.find(value)
            while start >= 0:
                span = Span(start, start + len(value))
                iid = item_id(source, t.text, span)
                if iid in where:
                    where[iid].append(((t.source, t.line, t.path), span))
                start = t.text.find(value, start + 1)
    return where


@dataclass
class Score:
    split: str
    flagged: int  # items the detector flagged
    true: int  # of them, labelled secret or personal
    unlabelled: int
    secrets: int  # items labelled secret (by any detector)
    caught: int  # of them, flagged by this detector at every occurrence
    personal: int = 0  # items labelled personal (e-mail addresses)
    personal_caught: int = 0

    @property
    def precision(self) -> float:
        labelled = self.flagged - self.unlabelled
        return self.true / labelled if labelled else 1.0

    @property
    def recall(self) -> float:
        return self.caught / self.secrets if self.secrets else 1.0

    def line(self, name: str) -> str:
        personal = self.personal_caught / self.personal if self.personal else 1.0
        return (f"{name:<16} {self.split:<8} precision {self.precision:.3f} ({self.true}/{self.flagged - self.unlabelled}"
                f"{f', {self.unlabelled} unlabelled' if self.unlabelled else ''})  recall: secrets {self.recall:.3f} "
                f"({self.caught}/{self.secrets}), personal e-mail {personal:.3f} ({self.personal_caught}/{self.personal})")

    def as_dict(self) -> dict:
        return {"split": self.split, "flagged": self.flagged, "right": self.true, "unlabelled": self.unlabelled,
                "precision": self.precision, "secrets": self.secrets, "secrets_caught": self.caught,
                "recall": self.recall, "personal": self.personal, "personal_caught": self.personal_caught}


def score(found: Findings, items: dict[str, Item], where: dict[str, list]) -> list[Score]:
    scores = []
    for split in ("tuning", "untuned"):
        flagged = [iid for iid in found.items if (items.get(iid) or found.new[iid]).split == split]
        labels = [items[iid].label if iid in items else None for iid in flagged]
        counts = {}
        for label in POSITIVE:
            wanted = [iid for iid in where if items[iid].split == split and items[iid].label == label]
            counts[label] = (len(wanted), sum(_caught(found, where[iid]) for iid in wanted))
        scores.append(Score(split, len(flagged), sum(labels.count(p) for p in POSITIVE), labels.count(None),
                            *counts["secret"], *counts["personal"]))
    return scores


def _caught(found: Findings, occurrences: list) -> bool:
    """Flagged wherever it occurs (one occurrence left is a leak)."""
    return bool(occurrences) and all(any(s.start < sp.end and sp.start < s.end for s in found.spans.get(loc, ()))
                                     for loc, sp in occurrences)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["extract", "report"])
    ap.add_argument("--tag", default="ccd", help="name recorded in found_by for new items")
    args = ap.parse_args()
    corpus = list(texts())
    items = load()
    found = run(ours(), corpus, items)
    if args.command == "extract":
        for iid, item in found.new.items():
            item.found_by = [args.tag]
            items[iid] = item
        for iid, n in found.items.items():
            items[iid].occurrences = max(items[iid].occurrences, n)
            if args.tag not in items[iid].found_by:
                items[iid].found_by.append(args.tag)
        save(items)
        print(f"{len(found.items)} items flagged, {len(found.new)} new; {len(items)} in the set")
    for s in score(found, items, secret_occurrences(corpus, items)):
        print(s.line("cc-capture"))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
