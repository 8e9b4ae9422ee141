"""Sentence classifier: which reasoning signals one sentence of the assistant's text carries.

Per signal, either the phrase detectors' verdict alone or a logistic regression over the
sentence's words, the detectors' pattern hits and verdicts (phrases.pattern_hits), cue groups
from the labelling rules, the cue groups and verdicts of the sentence before, and where it stands
in the trace (`Context`: after a failed call; before a test, lint, build, edit or read; in the
final answer). Weights are trained offline on the dev split of tests/fixtures/signals/ by
tests/fixtures/signals/train_classifier.py (which chooses, by cross-validation over dev sessions,
one configuration for every signal, a precision-favouring threshold per signal, and where the
detectors alone do better) and ship as sentence_weights.json. Scoring is a sum of dictionary
look-ups: pure Python, no numpy. At inference only the feature families some shipped weight uses
are made (Models.families), and each sentence is read once (read()), also as the next one's
sentence before; training makes every family (features()).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache, reduce
from operator import add
from pathlib import Path

import ahocorasick_rs

from cc_capture.signals import phrases

WEIGHTS = Path(__file__).with_name("sentence_weights.json")
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
NEXT_CALLS = ("check", "edit", "read", "shell", "other", "")  # "": no call follows (the final answer)


@dataclass(frozen=True)
class Context:
    """Where a sentence stands in its trace."""

    after_error: bool = False  # a call of the batch before this text failed
    next_call: str = "other"  # kind of the call this text leads to (NEXT_CALLS)
    before: str = ""  # the sentence before it in the same text ("" for the first)


def patterns_digest() -> str:
    """Identifies the detector patterns the weights were trained against (their indices are features)."""
    text = "\n".join(f"{k}\t{p.pattern}" for k, p in zip(phrases._OWNER, phrases.PATTERNS))
    text += "\n" + "\n".join(f"{d.kind}!\t{x.pattern}" for d in phrases.DETECTORS for x in d.exclude)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Cues the labelling rules name (LABELLING.md), grouped so that one weight serves every wording
# of a cue: a few positives per wording are too few to learn each alone. Each is a word or a
# sequence of words (as _WORD_RE splits them); OPENERS count only at the start of a sentence.
_CUES = {
    "revise": ("actually", "i was wrong", "my mistake", "my bad", "my earlier", "my previous", "my first",
               "i misread", "i forgot", "i missed", "i overlooked", "that's not right", "that didn't work",
               "apologize", "apologise", "apologies"),
    "failed": ("fail", "failed", "fails", "failing", "failure", "error", "broke", "broken", "didn't work",
               "didn't match", "didn't pass"),
    "modal_rule": ("must", "mustn't", "never", "always", "has to", "have to", "needs to stay", "need to stay",
                   "don't", "do not", "cannot", "can't", "shouldn't", "should not", "only"),
    "hedge": ("might", "may", "probably", "likely", "presumably", "perhaps", "seem", "seems", "appear", "appears",
              "suspect", "i think", "i believe", "i assume", "assume", "assuming", "assumption", "should be",
              "guess"),
    "check_verb": ("run", "rerun", "re run", "verify", "confirm", "check", "test", "ensure", "make sure",
                   "validate", "compile", "build", "rebuild", "lint", "typecheck", "type check"),
    "check_object": ("test", "tests", "suite", "build", "compiles", "compiled", "compilation", "lint", "linter",
                     "typecheck", "type check", "pass", "passes", "passed", "passing", "clean", "succeeds",
                     "succeeded", "work", "works", "correctly", "green", "errors", "warnings"),
    "sequence": ("then", "first", "next", "after that", "finally", "followed by", "step"),
    "alternative": ("alternatively", "instead", "rather than", "otherwise", "would", "could", "without"),
    "compare": ("better", "simpler", "cleaner", "cleanest", "simplest", "best", "prefer", "preferred",
                "preferable", "recommend", "recommended", "rather", "over"),
    "self_ref": ("i", "my", "i've", "i'd", "i'm", "me"),
    "decline": ("no need", "not needed", "unnecessary", "won't work", "overkill", "instead of", "rather than",
                "skip", "avoid", "not worth"),
}
_OPENERS = {
    "opener_revise": ("actually", "wait", "hmm", "hmmm", "ah", "ahh", "oh", "oops", "sorry", "hold on", "no",
                      "i see"),
    "lets": ("let me", "let's", "i'll", "i will", "i need to", "i should", "now let me", "now i'll"),
}
_CUE_WORDS = {name: frozenset(c for c in cues if " " not in c) for name, cues in _CUES.items()}
_CUE_PHRASES = [(f" {c} ", name) for name, cues in _CUES.items() for c in cues if " " in c]
_CUE_PHRASE_MATCHER = ahocorasick_rs.AhoCorasick([p for p, _ in _CUE_PHRASES])
_OPENER_CUES = {c: {n for n, cs in _OPENERS.items() if c in cs} for cs in _OPENERS.values() for c in cs}
_NUMBERED = re.compile(r"^\s*\d+[.)]\s")


def _cues(words: list[str]) -> frozenset[str]:
    """The cue groups present in a sentence's words."""
    present = set(words)
    out = {name for name, ws in _CUE_WORDS.items() if not present.isdisjoint(ws)}
    out.update(_CUE_PHRASES[i][1] for i, _, _ in
               _CUE_PHRASE_MATCHER.find_matches_as_indexes(f" {' '.join(words)} ", overlapping=True))
    for n in range(1, 4):
        out.update(_OPENER_CUES.get(" ".join(words[:n]), ()))
    return frozenset(out)


FAMILIES = frozenset({"u", "b", "f", "f2", "w", "p", "k", "h", "n", "c"})  # features' name prefixes ("w:k:x" is "w")


@dataclass(slots=True)
class Read:
    """What feature_set() reads of one sentence, made once: at extraction each sentence is read
    again as the next one's sentence before."""

    words: list[str]
    cues: frozenset[str]  # _cues(words)
    pattern_ids: list[int]
    kinds: set[str]  # the detectors' verdict


def read(sentence: str, hits: tuple[list[int], set[str]] | None = None) -> Read:
    """One sentence's words, cue groups and detector hits (`hits` spares running the detectors)."""
    words = _WORD_RE.findall(sentence.lower())
    return Read(words, _cues(words), *(hits if hits is not None else phrases.pattern_hits(sentence)))


def features(sentence: str, context: Context, hits: tuple[list[int], set[str]] | None = None,
             before_kinds: set[str] | None = None) -> list[str]:
    """The named features of one sentence, sorted, every family made: what training reads."""
    return sorted(feature_set(sentence, context, hits, before_kinds))


def feature_set(sentence: str, context: Context, hits: tuple[list[int], set[str]] | None = None,
                before_kinds: set[str] | None = None, families: frozenset[str] = FAMILIES,
                parts: Read | None = None, before: Read | None = None) -> set[str]:
    """The named features of one sentence (each present once; absent ones are 0): its
    words (u: unigrams, b: bigrams, f:/f2: first words), the cue groups and detector verdicts of
    the sentence before (w:), the detectors' pattern hits and verdicts (p:, k:), cue groups (h:)
    and its place in the trace (n:, c:). Only the `families` asked for are made (inference asks
    for those the shipped weights use). `hits`, `before_kinds`, `parts` (read(sentence)) and
    `before` (read(context.before)) spare reading again what the caller has read."""
    parts = parts or read(sentence, hits)
    words = parts.words
    out = {f"u:{w}" for w in words} if "u" in families else set()
    if "b" in families:
        out.update(f"b:{a} {b}" for a, b in zip(words, words[1:]))
    if words:
        if "f" in families:
            out.add(f"f:{words[0]}")
        if "f2" in families:
            out.add(f"f2:{' '.join(words[:2])}")
    if context.before and "w" in families:
        if before is None:
            before = read(context.before, None if before_kinds is None else ([], before_kinds))
        out.update(f"w:{c}" for c in before.cues)
        out.update(f"w:k:{k}" for k in before.kinds)
    if "p" in families:
        out.update(f"p:{i}" for i in parts.pattern_ids)
    if "k" in families:
        out.update(f"k:{k}" for k in parts.kinds)
    if "h" in families:
        cues = set(parts.cues)
        if _NUMBERED.match(sentence):
            cues.add("numbered")
        if "check_verb" in cues and "check_object" in cues:
            cues.add("check_phrase")
        if context.next_call == "check" and ("check_verb" in cues or "check_object" in cues):
            cues.add("check_words_then_check")
        if context.after_error and ("failed" in cues or "revise" in cues or "opener_revise" in cues):
            cues.add("failure_words_after_error")
        n = len(words)
        cues.add("short" if n < 8 else "long" if n > 30 else "medium")
        out.update(f"h:{c}" for c in cues)
    if "n" in families:
        out.add(f"n:{context.next_call}")
    if "c" in families:
        if context.after_error:
            out.add("c:after_error")
        if context.before.endswith(":"):
            out.add("c:after_colon")
        if not context.before:
            out.add("c:first")
    return out


@dataclass(frozen=True)
class Model:
    """One signal's decision: the detectors' verdict alone, or a linear score over features."""

    kind: str
    method: str  # "classifier" | "rules"
    bias: float
    threshold: float  # a logit: found when bias + sum of its features' weights (Models.index) >= threshold


@dataclass(frozen=True)
class Models:
    """The shipped models, with every feature's weights gathered in one look-up (feature -> its
    weight in each classifier model, 0.0 where it has none), so a sentence costs one dictionary
    look-up per feature and one C-level reduction per classifier model."""

    models: list[Model]
    scored: tuple[int, ...]  # positions in `models` of the classifier models, the columns of `index`
    biases: tuple[float, ...]  # the classifier models' biases, in `scored` order
    index: dict[str, tuple[float, ...]]
    families: frozenset[str]  # the feature families (FAMILIES) some weight uses: the only ones worth making

    def _scored(self, feats: Iterable[str]) -> list[float]:
        """The classifier models' scores: each bias, then the weights of the features that have
        one, added left to right in sorted feature order whatever order `feats` comes in (one
        order, one float result; adding a 0.0 leaves a float unchanged)."""
        rows = [self.biases, *map(self.index.__getitem__, sorted(self.index.keys() & feats))]
        return [reduce(add, column) for column in zip(*rows)]  # not sum(): it compensates on 3.12+

    def scores(self, feats: Iterable[str]) -> list[float]:
        """Each model's score (a logit) for one sentence's features (a rules model's is its bias)."""
        scores = [m.bias for m in self.models]
        for i, score in zip(self.scored, self._scored(feats)):
            scores[i] = score
        return scores

    def decide(self, feats: Iterable[str], rule_kinds: set[str]) -> set[str]:
        found = {m.kind for m in self.models if m.method == "rules" and m.kind in rule_kinds}
        found.update(self.models[i].kind for i, score in zip(self.scored, self._scored(feats))
                     if score >= self.models[i].threshold)
        return found


def build(data: dict) -> Models:
    """Models from a weights document (sentence_weights.json's content); kinds absent from it
    keep the detectors' verdict."""
    kinds = [(k, {"method": "rules", "bias": 0.0, "threshold": 0.0, "weights": {}})
             for k in phrases.KINDS if k not in data["kinds"]] + sorted(data["kinds"].items())
    scored = tuple(i for i, (_, m) in enumerate(kinds) if m["method"] == "classifier")
    names = sorted({f for i in scored for f in kinds[i][1]["weights"]})
    index = {f: tuple(float(kinds[i][1]["weights"].get(f, 0.0)) for i in scored) for f in names}
    return Models([Model(k, m["method"], m["bias"], m["threshold"]) for k, m in kinds], scored,
                  tuple(float(kinds[i][1]["bias"]) for i in scored), index,
                  frozenset(f.split(":")[0] for f in index))


@lru_cache(maxsize=1)
def models() -> Models:
    """The shipped models."""
    data = json.loads(WEIGHTS.read_text())
    if data["patterns"] != patterns_digest():
        raise RuntimeError(f"{WEIGHTS.name} was trained against other detector patterns: "
                           "rerun tests/fixtures/signals/train_classifier.py")
    return build(data)


def classify(sentence: str, context: Context = Context()) -> set[str]:
    """The signal kinds one sentence carries."""
    m = models()
    parts = read(sentence)
    return m.decide(feature_set(sentence, context, families=m.families, parts=parts), parts.kinds)


def detect(text: str, after_error: bool = False, next_call: str = "other") -> dict[str, list[str]]:
    """Sentences of one text (the reasoning before a call, or the final answer) per kind."""
    m = models()
    found: dict[str, list[str]] = {k: [] for k in phrases.KINDS}
    previous, previous_parts = "", None
    for s in phrases.sentences(text):
        parts = read(s)
        feats = feature_set(s, Context(after_error, next_call, previous), families=m.families, parts=parts,
                            before=previous_parts)
        for kind in m.decide(feats, parts.kinds):
            found[kind].append(s)
        previous, previous_parts = s, parts
    return found
