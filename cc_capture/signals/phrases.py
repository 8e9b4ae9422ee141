"""Phrase detectors: which sentences of the assistant's text state a constraint, reject an
approach, correct itself, assume, check, consider an alternative, caution, criticise itself,
rank options, or lay out a plan.

Each detector is a list of regular expressions over one sentence; a sentence counts once per
kind. A pattern runs only on sentences that hold one of the words it cannot match without
(read off the parsed regex; one Aho-Corasick pass per sentence finds them), which makes
detection about 9x faster on long assistant texts without changing what it finds. The
labelled set in tests/fixtures/signals_labelled.jsonl measures them (precision and recall per
kind, printed by benchmarks/signals.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

try:  # the regex parser, to read what words a pattern needs (Python 3.11+; 3.10 below)
    import re._constants as _sre
    import re._parser as _sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

import ahocorasick_rs

_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'`(])|\n+")


def sentences(text: str) -> list[str]:
    """Split prose into sentences (and lines: list items are sentences too)."""
    return [s.strip(" -*\t") for s in _SENTENCE_RE.split(text or "") if s and s.strip(" -*\t")]


def _rx(*patterns: str) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


CONSTRAINT = _rx(
    r"\b(?:must|mustn't|must not|shall not|have to|has to|needs? to|required to|is required)\b.*\b(?:keep|preserve|remain|stay|maintain|not|only|without|compatible|unchanged|pass|work|support)\b",
    r"\b(?:can't|cannot|can not|shouldn't|should not|must not|mustn't|don't|do not|never)\s+(?:modify|change|touch|edit|break|remove|delete|rename|alter|add)\b",
    r"\bwithout (?:breaking|changing|modifying|touching|altering|affecting)\b",
    r"\bbackwards?[- ]compatib",
    r"\b(?:preserve|keep|maintain)s?\b.{0,40}\b(?:public api|interface|signature|behaviou?r|format|compatib|existing)",
    r"\bonly (?:modify|change|touch|edit|use)\b",
    r"\b(?:constraint|requirement|restriction) (?:is|here|:)",
    r"\b(?:is|are) (?:not allowed|forbidden|off-limits|read-only)\b|\benforc(?:e|es|ed|ing)\b",
    r"\b(?:can't|cannot|can not|must not|shouldn't) be (?:bypassed|skipped|changed|modified|removed|disabled|touched)\b",
    r"\b(?:the user|you) (?:requested|asked|wants?|said|specified|required|insisted)\b",
    r"\bmake sure (?:not to|to not|we don't|I don't|it still|that .{0,40}(?:still|remains?|stays?|keeps?))",
)

PRUNING = _rx(
    r"\binstead\b|\brather than\b",
    r"\bI (?:considered|thought about|looked at|was going to)\b.{0,80}\b(?:but|however)\b",
    r"\b(?:won't|wouldn't|will not|would not|doesn't|does not|can't|cannot) work\b.{0,60}\b(?:because|since|as|due)\b",
    r"\b(?:ruled out|decided against|rejected|abandon(?:ed)?|discard(?:ed)?|dropping) (?:the |this |that )?(?:idea|approach|option|plan|solution)?",
    r"\b(?:that|this|the first|the other|which) (?:approach|option|idea|way) (?:would be|would|is|was) (?:too|not|worse|overkill|fragile|risky|slower)\b",
    r"\bnot (?:going to|gonna) (?:use|go with|do)\b.{0,60}\b(?:because|since|as)\b",
    r"\b(?:better|simpler|safer) (?:to|than)\b.{0,60}\b(?:rather|instead|than)\b",
    r"\bskip(?:ping)? (?:the |that |this )?(?:approach|idea|option)\b",
)

SELF_CORRECTION = _rx(
    r"^(?:actually|wait|hmm|oops)\b[,.!:]?",
    r"\b(?:I was wrong|I made (?:a|an) (?:mistake|error)|my (?:mistake|bad|error)|that was (?:wrong|incorrect|a mistake))\b",
    r"\b(?:let me|I'll|I need to|I should) (?:correct|fix|redo|revise|reconsider|re-check|recheck) (?:that|this|my|the (?:earlier|previous))\b",
    r"\bon second thought\b",
    r"\b(?:that's|that is|this is|that isn't|this isn't) (?:not right|not correct|incorrect|wrong|not what)\b",
    r"\bI (?:misread|misunderstood|overlooked|missed|forgot)\b",
    r"^I see\b|\bI (?:see|found) (?:the|what the) (?:issue|problem|bug|mistake)\b",
    r"\b(?:I'm|I am|I was|I've been|I had)\b.{0,40}\b(?:incorrect(?:ly)?|wrong(?:ly)?|mistaken)\b",
    r"\b(?:try|trying|take|use) (?:a )?(?:different|another) approach\b",
    r"\blet me fix (?:it|that|this)\b|\bfixed by\b",
    r"\b(?:let me|I'll|I need to|I should) (?:completely |fully )?(?:rewrite|redo|rework)\b",
    r"\b(?:do|doing|handle|implement) (?:this|it|that) (?:properly|correctly|right)\b",
    r"\bthat's the (?:bug|issue|problem|mistake)\b|\bmy (?:code|change|edit|fix|implementation|assumption) (?:was|is)\b",
    r"\b(?:is|was) wrong\b",
    r"\b(?:the|that|my) (?:previous|last|earlier) (?:attempt|command|edit|approach|call) (?:failed|didn't work|was wrong)\b",
    r"\b(?:it|that|the command|the edit|the test) failed\b.{0,60}\b(?:let me|I'll|trying|try|instead)\b",
)

ASSUMPTION = _rx(
    r"\bI(?:'ll| will|'m| am)? (?:assum|guess|presum|suppos)(?:e|ing)\b",
    r"\bassuming\b",
    r"\b(?:presumably|probably|likely|apparently|seemingly|maybe|perhaps)\b",
    r"\b(?:it|this|that|which) (?:should|ought to) (?:return|be|work|contain|exist|have)\b",
    r"\b(?:it|this|that) (?:seems|appears|looks like)\b",
    r"\bI (?:believe|think|suspect|expect)\b",
    r"\b(?:should be|must be) (?:the|a|an|in|at|on)\b.{0,40}\b(?:since|because|given)\b",
)

VALIDATION = _rx(
    r"\b(?:let me|I'll|I will|now I'll|I'm going to|to) (?:verify|double-check|double check|confirm|validate|check that|check whether|check if|make sure)\b",
    r"\b(?:run(?:ning)?|re-?run(?:ning)?) (?:the )?(?:tests?|test suite|linter|type ?check(?:er)?|build|checks?)\b",
    r"\b(?:tests?|checks?|specs?|build|linter)\b.{0,30}\b(?:pass(?:es|ed|ing)?|succeed(?:s|ed)?|green)\b",
    r"\ball (?:\w+ )?(?:passing|passed|green)\b",
    r"\bcompiles?\b.{0,20}\b(?:cleanly|successfully|without (?:errors|warnings))\b",
    r"\b(?:let me|let's|I'll|now) (?:test|compile|build|try running)\b",
    r"(?<![-\w])verif(?:y|ied|ying)\b",
    r"\bsanity[- ]check\b",
)

COUNTERFACTUAL = _rx(
    r"\bif (?:we|I|you|it|this|that|the)\b.{0,80}\b(?:had|were|would|could)\b",
    r"\b(?:alternatively|another option|other option|another way|one alternative|an alternative)\b",
    r"\b(?:could|might) (?:also|instead|alternatively)\b",
    r"\botherwise\b",
    r"\bwhat if\b",
)

SAFETY_REFUSAL = _rx(
    r"\bI (?:can't|cannot|won't|will not|am not able to|'m not able to|must decline to) (?:help|assist|do that|comply|provide|write|create|run that)\b",
    r"\b(?:I'm|I am) (?:not comfortable|unable to help)\b",
    r"\bagainst (?:the |my )?(?:policy|guidelines)\b",
)

SAFETY_CAUTION = _rx(
    r"\b(?:be careful|careful:|heads up|note that this will)\b|^(?:warning|caution)\b\s*[:!,-]|\b(?:warning|caution):",
    r"\b(?:irreversible|destructive|cannot be undone|can't be undone|permanently delete|data loss|force[- ]push)\b",
    r"\bmake sure (?:you have|to have|you've got) (?:a )?backup",
    r"\b(?:this|that|it) (?:will|would|could) (?:delete|overwrite|wipe|drop|erase)\b",
    r"\b(?:delete|wipe|drop|erase|destroy)\b.{0,30}\b(?:production|user data|all (?:the )?data|database)\b",
)

SELF_CRITIQUE = _rx(
    r"\bI should have\b",
    r"\bin hindsight\b",
    r"\b(?:a better|the better|a cleaner|a simpler) (?:approach|way|fix|solution) (?:would|might|could) (?:have been|be)\b",
    r"\b(?:my|the) (?:earlier|previous|first) (?:approach|attempt|answer|fix) (?:was|wasn't|missed|didn't)\b",
    r"\bI (?:overlooked|missed|didn't consider|did not consider|forgot to)\b",
    r"\b(?:limitation|weakness|caveat) (?:of|in|is|here)\b",
)

PREFERENCE = _rx(
    r"\b(?:I|we|I'd|we'd) (?:would )?prefer\b|\bpreferable\b|\bprefer\w* .{0,40}\b(?:over|rather than)\b",
    r"\b(?:is|are|seems|looks) (?:better|cleaner|simpler|safer|faster|preferable) than\b",
    r"\bthe (?:best|better|simplest|cleanest|safest) (?:option|approach|choice|way|fix)\b",
    r"\b(?:option|approach) (?:a|b|1|2|one|two)\b.{0,80}\b(?:better|worse|prefer|recommend)",
    r"\bI (?:recommend|would recommend|suggest going with)\b",
    r"\bpros and cons\b|\btrade-?offs?\b",
)

PLAN = _rx(
    r"^(?:here'?s |here is )?(?:my |the )?plan\b",
    r"\b(?:first|step 1|start by)\b.{0,200}\b(?:then|next|after that|afterwards|finally)\b",
    r"\b(?:steps?|approach):\s*$",
)
_NUMBERED_RE = re.compile(r"^\s*(?:\d+[.)]|[-*])\s+\S", re.MULTILINE)


@dataclass(frozen=True)
class Detector:
    kind: str
    patterns: list[re.Pattern[str]]


DETECTORS = [
    Detector("constraint", CONSTRAINT), Detector("pruning", PRUNING), Detector("self_correction", SELF_CORRECTION),
    Detector("assumption", ASSUMPTION), Detector("validation", VALIDATION), Detector("counterfactual", COUNTERFACTUAL),
    Detector("safety_refusal", SAFETY_REFUSAL), Detector("safety_caution", SAFETY_CAUTION),
    Detector("self_critique", SELF_CRITIQUE), Detector("preference", PREFERENCE), Detector("plan", PLAN),
]
KINDS = [d.kind for d in DETECTORS]


def _required_words(seq) -> frozenset[str] | None:
    """Lower-case literals one of which every match of this parsed regex sequence contains (the
    most selective such set), or None where the analysis finds none."""
    best: frozenset[str] | None = None

    def consider(words: frozenset[str] | None) -> None:
        nonlocal best
        if words and (best is None or min(map(len, words)) > min(map(len, best))):
            best = words

    run: list[str] = []
    for op, av in seq:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        if run:
            consider(frozenset(["".join(run).lower()]))
            run = []
        if op is _sre.BRANCH:
            alternatives = [_required_words(branch) for branch in av[1]]
            if all(alternatives):
                consider(frozenset().union(*alternatives))
        elif op is _sre.SUBPATTERN:
            consider(_required_words(av[-1]))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] >= 1:
            consider(_required_words(av[2]))
    if run:
        consider(frozenset(["".join(run).lower()]))
    return best


def _gates() -> tuple["ahocorasick_rs.AhoCorasick", list[list[int]], set[int]]:
    """Most sentences hold none of the words a pattern needs: one Aho-Corasick pass over a
    sentence tells which patterns can match at all, and only those run."""
    words: dict[str, list[int]] = {}
    ungated: set[int] = set()
    for i, pattern in enumerate(_PATTERNS):
        try:
            required = _required_words(_sre_parse.parse(pattern.pattern, pattern.flags))
        except Exception:  # an analysis this module cannot do: the pattern always runs
            required = None
        if required is None:
            ungated.add(i)
        for word in required or ():
            words.setdefault(word, []).append(i)
    return ahocorasick_rs.AhoCorasick(list(words)), list(words.values()), ungated


_PATTERNS = [p for d in DETECTORS for p in d.patterns]
_OWNER = [d.kind for d in DETECTORS for _ in d.patterns]
_WORDS, _WORD_PATTERNS, _UNGATED = _gates()


def detect(text: str) -> dict[str, list[str]]:
    """Sentences of `text` per detector kind."""
    found: dict[str, list[str]] = {k: [] for k in KINDS}
    for s in sentences(text):
        candidates = set(_UNGATED)
        for word, _, _ in _WORDS.find_matches_as_indexes(s.lower(), overlapping=True):
            candidates.update(_WORD_PATTERNS[word])
        matched: set[str] = set()
        for i in sorted(candidates):
            if _OWNER[i] not in matched and _PATTERNS[i].search(s):
                matched.add(_OWNER[i])
        for kind in KINDS:
            if kind in matched:
                found[kind].append(s)
    return found


def numbered_steps(text: str) -> list[str]:
    """Items of a numbered or bulleted list with at least two items, as plan steps."""
    items = [m.group(0).strip() for m in re.finditer(r"^\s*(?:\d+[.)]|[-*])\s+.+$", text or "", re.MULTILINE)]
    return items if len(items) >= 2 else []


_CONFIDENCE = [
    (re.compile(r"\b(?:definitely|certainly|clearly|must be|surely)\b", re.I), 0.9),
    (re.compile(r"\b(?:likely|probably|presumably|I believe|should be)\b", re.I), 0.7),
    (re.compile(r"\b(?:assum|suppos|I think|seems|appears|looks like|I expect)\w*", re.I), 0.6),
    (re.compile(r"\b(?:might|may|maybe|perhaps|possibly|I guess|I suspect|not sure)\b", re.I), 0.4),
]


def assumption_confidence(sentence: str) -> float:
    """How sure the assistant sounds about an assumption, from its wording."""
    for rx, value in _CONFIDENCE:
        if rx.search(sentence):
            return value
    return 0.5


_BECAUSE_RE = re.compile(r"\b(?:because|since|as|due to|given that)\b(.*)$", re.I)


def split_reason(sentence: str) -> tuple[str, str | None]:
    """`approach, reason` of a pruning sentence: the reason is what follows 'because/since/...'."""
    m = _BECAUSE_RE.search(sentence)
    if not m:
        return sentence, None
    return sentence[: m.start()].strip(" ,;"), m.group(1).strip(" .") or None
