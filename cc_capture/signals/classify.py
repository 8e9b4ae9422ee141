"""Sentence classifier: which reasoning signals one sentence of the assistant's text carries.

A logistic regression per signal over three kinds of evidence: the sentence's words (unigrams,
bigrams, its first words), which phrase-detector patterns match it (phrases.pattern_hits), and
where it stands in the trace (`Context`: after a failed call; before a test, lint, build, edit
or read; in the final answer; after a line ending in a colon). Weights are trained offline on
the dev split of tests/fixtures/signals/ by tests/fixtures/signals/train_classifier.py (which
also chooses, by cross-validation over dev sessions, per signal, the regularisation, the
threshold and whether the classifier beats the detectors alone) and ship as
sentence_weights.json. Scoring is a sum of dictionary look-ups: pure Python, no numpy.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cc_capture.signals import phrases

WEIGHTS = Path(__file__).with_name("sentence_weights.json")
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
NEXT_CALLS = ("check", "edit", "read", "shell", "other", "")  # "": no call follows (the final answer)


@dataclass(frozen=True)
class Context:
    """Where a sentence stands in its trace."""

    after_error: bool = False  # a call of the batch before this text failed
    next_call: str = "other"  # kind of the call this text leads to (NEXT_CALLS)
    after_colon: bool = False  # the sentence before it ends with ":" (a list being introduced)


def patterns_digest() -> str:
    """Identifies the detector patterns the weights were trained against (their indices are features)."""
    text = "\n".join(f"{k}\t{p.pattern}" for k, p in zip(phrases._OWNER, phrases.PATTERNS))
    text += "\n" + "\n".join(f"{d.kind}!\t{x.pattern}" for d in phrases.DETECTORS for x in d.exclude)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def features(sentence: str, context: Context, hits: tuple[list[int], set[str]] | None = None) -> list[str]:
    """The named features of one sentence (each present once; absent ones are 0), sorted."""
    pattern_ids, kinds = hits if hits is not None else phrases.pattern_hits(sentence)
    words = _WORD_RE.findall(sentence.lower())
    out = {f"u:{w}" for w in words}
    out.update(f"b:{a} {b}" for a, b in zip(words, words[1:]))
    if words:
        out.add(f"f:{words[0]}")
        out.add(f"f2:{' '.join(words[:2])}")
    out.update(f"p:{i}" for i in pattern_ids)
    out.update(f"k:{k}" for k in kinds)
    out.add(f"n:{context.next_call}")
    if context.after_error:
        out.add("c:after_error")
    if context.after_colon:
        out.add("c:after_colon")
    return sorted(out)


@dataclass(frozen=True)
class Model:
    """One signal's decision: the detectors' verdict alone, or a linear score over features."""

    kind: str
    method: str  # "classifier" | "rules"
    bias: float
    threshold: float  # a logit: found when bias + sum of weights >= threshold
    weights: dict[str, float]


@dataclass(frozen=True)
class Models:
    """The shipped models, with every feature's weights gathered in one look-up (feature ->
    (model index, weight) pairs), so a sentence costs one dictionary look-up per feature."""

    models: list[Model]
    index: dict[str, tuple[tuple[int, float], ...]]

    def decide(self, feats: list[str], rule_kinds: set[str]) -> set[str]:
        scores = [m.bias for m in self.models]
        get = self.index.get
        for f in feats:
            entry = get(f)
            if entry:
                for i, w in entry:
                    scores[i] += w
        return {m.kind for m, score in zip(self.models, scores)
                if (m.kind in rule_kinds if m.method == "rules" else score >= m.threshold)}


@lru_cache(maxsize=1)
def models() -> Models:
    """The shipped models; kinds absent from the file keep the detectors' verdict."""
    data = json.loads(WEIGHTS.read_text())
    if data["patterns"] != patterns_digest():
        raise RuntimeError(f"{WEIGHTS.name} was trained against other detector patterns: "
                           "rerun tests/fixtures/signals/train_classifier.py")
    out = [Model(k, "rules", 0.0, 0.0, {}) for k in phrases.KINDS if k not in data["kinds"]]
    out += [Model(k, m["method"], m["bias"], m["threshold"], m["weights"]) for k, m in sorted(data["kinds"].items())]
    index: dict[str, list[tuple[int, float]]] = {}
    for i, m in enumerate(out):
        for f, w in m.weights.items():
            index.setdefault(f, []).append((i, w))
    return Models(out, {f: tuple(v) for f, v in index.items()})


def classify(sentence: str, context: Context = Context()) -> set[str]:
    """The signal kinds one sentence carries."""
    hits = phrases.pattern_hits(sentence)
    return models().decide(features(sentence, context, hits), hits[1])


def detect(text: str, after_error: bool = False, next_call: str = "other") -> dict[str, list[str]]:
    """Sentences of one text (the reasoning before a call, or the final answer) per kind."""
    found: dict[str, list[str]] = {k: [] for k in phrases.KINDS}
    previous = ""
    for s in phrases.sentences(text):
        for kind in classify(s, Context(after_error, next_call, previous.endswith(":"))):
            found[kind].append(s)
        previous = s
    return found
