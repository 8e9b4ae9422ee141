"""Sentence classifier: which reasoning signals one sentence of the assistant's text carries.

Per signal, either the phrase detectors' verdict alone or a logistic regression over the
sentence's words, the detectors' pattern hits and verdicts (phrases.pattern_hits), cue groups
from the labelling rules, the cue groups and verdicts of the sentence before, and where it stands
in the trace (`Context`: after a failed call; before a test, lint, build, edit or read; in the
final answer). Weights are trained offline on the dev split of tests/fixtures/signals/ by
tests/fixtures/signals/train_classifier.py (which chooses, by cross-validation over dev sessions,
one configuration for every signal, a precision-favouring threshold per signal, and where the
detectors alone do better) and ship as sentence_weights.json. Scoring is a sum of dictionary
look-ups: pure Python, no numpy. Training names every feature of every family (features()). At
inference only the families some shipped weight uses are made (Models.families), and no feature
is named: each key is looked up in its family's table for its rank (feature_keys()); what a
sentence alone decides is read once (Models.sentence), also as the next one's sentence before,
and what its place adds is looked up apart (Models.placed); both are remembered for sentences
met again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

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
_CUE_GROUPS_OF_WORD = {w: tuple(n for n, cues in _CUES.items() if w in cues)  # a one-word cue -> its groups
                       for cues in _CUES.values() for w in cues if " " not in w}
_CUE_PHRASES = [(f" {c} ", name) for name, cues in _CUES.items() for c in cues if " " in c]
_CUE_PHRASE_MATCHER = ahocorasick_rs.AhoCorasick([p for p, _ in _CUE_PHRASES])
_OPENER_CUES = {c: {n for n, cs in _OPENERS.items() if c in cs} for cs in _OPENERS.values() for c in cs}
_NUMBERED = re.compile(r"^\s*\d+[.)]\s")


def _cues(words: list[str]) -> frozenset[str]:
    """The cue groups present in a sentence's words."""
    out = {name for w in _CUE_GROUPS_OF_WORD.keys() & words for name in _CUE_GROUPS_OF_WORD[w]}
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
    """The named features of one sentence (each present once; absent ones are 0), each
    "FAMILY:KEY" of feature_keys(). `hits`, `before_kinds`, `parts` (read(sentence)) and `before`
    (read(context.before)) spare reading again what the caller has read."""
    parts = parts or read(sentence, hits)
    if context.before and "w" in families and before is None:
        before = read(context.before, None if before_kinds is None else ([], before_kinds))
    return {f"{family}:{key}" for family, keys in feature_keys(sentence, context, parts, before, families)
            for key in keys}


def feature_keys(sentence: str, context: Context, parts: Read, before: Read | None,
                 families: frozenset[str] = FAMILIES) -> list[tuple[str, Iterable[str]]]:
    """Each family's keys of one sentence (a feature is named "FAMILY:KEY"): its words (u:
    unigrams, b: bigrams, f:/f2: first words), the cue groups and detector verdicts of the
    sentence before (w:; `before` is read(context.before)), the detectors' pattern hits and
    verdicts (p:, k:), cue groups (h:) and its place in the trace (n:, c:). Only the `families`
    asked for are made (inference asks for those the shipped weights use, and looks each key up
    in its family's table rather than naming it: Models.sentence, Models.placed). The keys of the sentence
    alone come first (sentence_keys), then those of its place (place_keys)."""
    return sentence_keys(sentence, parts, families) + place_keys(context, parts.cues, before, families)


def sentence_keys(sentence: str, parts: Read, families: frozenset[str] = FAMILIES) -> list[tuple[str, Iterable[str]]]:
    """feature_keys() that the sentence alone decides, whatever its place."""
    words = parts.words
    out: list[tuple[str, Iterable[str]]] = []
    if "u" in families:
        out.append(("u", words))
    if "b" in families:
        out.append(("b", [f"{a} {b}" for a, b in zip(words, words[1:])]))
    if words:
        if "f" in families:
            out.append(("f", (words[0],)))
        if "f2" in families:
            out.append(("f2", (" ".join(words[:2]),)))
    if "p" in families:
        out.append(("p", [str(i) for i in parts.pattern_ids]))
    if "k" in families:
        out.append(("k", parts.kinds))
    if "h" in families:
        cues = set(parts.cues)
        if _NUMBERED.match(sentence):
            cues.add("numbered")
        if "check_verb" in cues and "check_object" in cues:
            cues.add("check_phrase")
        n = len(words)
        cues.add("short" if n < 8 else "long" if n > 30 else "medium")
        out.append(("h", cues))
    return out


def place_keys(context: Context, cues: frozenset[str], before: Read | Sentence | None,
               families: frozenset[str] = FAMILIES) -> list[tuple[str, Iterable[str]]]:
    """feature_keys() that depend on the sentence's place: the sentence before (`before`, read
    from context.before), the call that follows, a failure before; `cues` are the sentence's."""
    out: list[tuple[str, Iterable[str]]] = []
    if context.before and "w" in families and before is not None:
        out.append(("w", [*before.cues, *(f"k:{k}" for k in before.kinds)]))
    if "h" in families:
        placed = []
        if context.next_call == "check" and ("check_verb" in cues or "check_object" in cues):
            placed.append("check_words_then_check")
        if context.after_error and ("failed" in cues or "revise" in cues or "opener_revise" in cues):
            placed.append("failure_words_after_error")
        out.append(("h", placed))
    if "n" in families:
        out.append(("n", (context.next_call,)))
    if "c" in families:
        place = []
        if context.after_error:
            place.append("after_error")
        if context.before.endswith(":"):
            place.append("after_colon")
        if not context.before:
            place.append("first")
        out.append(("c", place))
    return out


@dataclass(frozen=True, slots=True)
class Sentence:
    """What inference keeps of one sentence, whatever its place: its cue groups and the
    detectors' verdict (also read as the next sentence's sentence before), and the ranks of its
    weighted sentence_keys() (Models.ranks), in order."""

    cues: frozenset[str]
    kinds: frozenset[str]
    ranks: tuple[int, ...]


@dataclass(frozen=True)
class Model:
    """One signal's decision: the detectors' verdict alone, or a linear score over features."""

    kind: str
    method: str  # "classifier" | "rules"
    bias: float
    threshold: float  # a logit: found when bias + sum of its features' weights (Models.index) >= threshold


@dataclass(frozen=True)
class Models:
    """The shipped models, with every weighted feature numbered in sorted order (its rank) and its
    weights gathered in one row (its weight in each classifier model that gives it one), so a
    sentence costs one dictionary look-up per feature key and one addition per weight. What a sentence alone decides (`sentence`) and what it decides in its
    place (`placed`) are remembered for the last few thousand: real transcripts repeat sentences
    (about 4% of those in ../shared), and a copied session repeats all of them."""

    models: list[Model]
    scored: tuple[int, ...]  # positions in `models` of the classifier models, the columns of `rows`
    biases: tuple[float, ...]  # the classifier models' biases, in `scored` order
    rows: tuple[tuple[tuple[int, float], ...], ...]  # a weighted feature's rank -> (column in `scored`, weight) where not 0.0
    rank: dict[str, int]  # a weighted feature's name -> its rank (its place in sorted order)
    ranks: dict[str, dict[str, int]]  # family -> key -> rank: `rank` by feature_keys()' parts
    families: frozenset[str]  # the feature families (FAMILIES) some weight uses: the only ones worth making
    rule_kinds: frozenset[str]  # the kinds decided by the detectors' verdict alone
    # a sentence -> its Sentence; (sentence, after_error, next_call, before) -> the kinds it carries there
    remembered: dict[str | tuple[str, bool, str, str], Sentence | frozenset[str]] = field(
        default_factory=dict, compare=False, repr=False)

    def _summed(self, ranks: Iterable[int]) -> list[float]:
        """The classifier models' scores: each bias, then the weights of the features that have
        one, added in sorted feature order whatever order they come in (one order, one float
        result; a weight of 0.0 is left out, which changes no score's value)."""
        scores = list(self.biases)
        for rank in sorted(ranks):
            for column, weight in self.rows[rank]:
                scores[column] += weight
        return scores

    def _scored(self, feats: Iterable[str]) -> list[float]:
        return self._summed({self.rank[f] for f in feats if f in self.rank})

    def _ranks(self, keys: list[tuple[str, Iterable[str]]]) -> set[int]:
        """The ranks of the weighted features among these feature_keys()."""
        ranks = self.ranks
        found = set().union(*(map(ranks[family].get, k) for family, k in keys))
        found.discard(None)
        return found

    def _remember(self, key: str | tuple[str, bool, str, str], chars: int, value: Any) -> Any:
        """`value`, remembered under `key` (of `chars` characters) unless the key is long: a long
        sentence is seldom met again, and short keys keep the memory bounded (REMEMBERED)."""
        if chars <= REMEMBERED_CHARS:
            if len(self.remembered) >= REMEMBERED:
                self.remembered.clear()
            self.remembered[key] = value
        return value

    def sentence(self, text: str) -> Sentence:
        """One sentence as inference reads it, wherever it stands."""
        found = self.remembered.get(text)
        if found is None:
            parts = read(text)
            found = self._remember(text, len(text), Sentence(parts.cues, frozenset(parts.kinds), tuple(
                sorted(self._ranks(sentence_keys(text, parts, self.families))))))
        return found

    def placed(self, text: str, context: Context, before: Sentence | None = None) -> frozenset[str]:
        """The kinds a sentence carries in its place (`before`, if given, is
        self.sentence(context.before))."""
        key = (text, context.after_error, context.next_call, context.before)
        found = self.remembered.get(key)
        if found is None:
            sentence = self.sentence(text)
            if before is None and context.before:
                before = self.sentence(context.before)
            placed = self._ranks(place_keys(context, sentence.cues, before, self.families))
            placed.difference_update(sentence.ranks)  # each weighted feature once
            scores = self._summed([*sentence.ranks, *placed])
            found = self._remember(key, len(text) + len(context.before), self.rule_kinds & sentence.kinds | {
                self.models[i].kind for i, score in zip(self.scored, scores) if score >= self.models[i].threshold})
        return found

    def scores(self, feats: Iterable[str]) -> list[float]:
        """Each model's score (a logit) for one sentence's features (a rules model's is its bias)."""
        scores = [m.bias for m in self.models]
        for i, score in zip(self.scored, self._scored(feats)):
            scores[i] = score
        return scores

    def decide(self, feats: Iterable[str], rule_kinds: set[str]) -> set[str]:
        found = set(rule_kinds & self.rule_kinds)
        found.update(self.models[i].kind for i, score in zip(self.scored, self._scored(feats))
                     if score >= self.models[i].threshold)
        return found


REMEMBERED = 2048  # entries Models.remembered holds before it starts again
REMEMBERED_CHARS = 400  # the longest key remembered: 2,048 entries then take about 2 MB at most


def build(data: dict) -> Models:
    """Models from a weights document (sentence_weights.json's content); kinds absent from it
    keep the detectors' verdict."""
    kinds = [(k, {"method": "rules", "bias": 0.0, "threshold": 0.0, "weights": {}})
             for k in phrases.KINDS if k not in data["kinds"]] + sorted(data["kinds"].items())
    scored = tuple(i for i, (_, m) in enumerate(kinds) if m["method"] == "classifier")
    names = sorted({f for i in scored for f in kinds[i][1]["weights"]})
    ranks: dict[str, dict[str, int]] = {family: {} for family in FAMILIES}
    for r, name in enumerate(names):
        family, key = name.split(":", 1)
        ranks[family][key] = r
    return Models([Model(k, m["method"], m["bias"], m["threshold"]) for k, m in kinds], scored,
                  tuple(float(kinds[i][1]["bias"]) for i in scored),
                  tuple(tuple((column, w) for column, i in enumerate(scored)
                              if (w := float(kinds[i][1]["weights"].get(f, 0.0)))) for f in names),
                  {f: r for r, f in enumerate(names)}, ranks, frozenset(f.split(":")[0] for f in names),
                  frozenset(k for k, m in kinds if m["method"] == "rules"))


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
    return set(models().placed(sentence, context))


def detect(text: str, after_error: bool = False, next_call: str = "other") -> dict[str, list[str]]:
    """Sentences of one text (the reasoning before a call, or the final answer) per kind."""
    m = models()
    found: dict[str, list[str]] = {k: [] for k in phrases.KINDS}
    previous = ""
    for s in phrases.sentences(text):
        for kind in m.placed(s, Context(after_error, next_call, previous)):
            found[kind].append(s)
        previous = s
    return found
