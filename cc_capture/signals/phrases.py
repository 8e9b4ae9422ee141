"""Phrase detectors: which sentences of the assistant's text state a constraint, reject an
approach, correct itself, assume, check, consider an alternative, caution, criticise itself,
rank options, or lay out a plan.

Each detector is a list of regular expressions over one sentence; a sentence counts once per
kind. A pattern runs only on sentences that hold, for one of its alternatives, a literal of
every set of words it cannot match without (read off the parsed regex; one Aho-Corasick pass
per sentence finds them: `Gate`), which makes detection many times faster on long assistant
texts without changing what it finds. The
labelled set in tests/fixtures/signals_labelled.jsonl measures them (precision and recall per
kind, printed by benchmarks/signals.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

try:  # the regex parser, to read what words a pattern needs (Python 3.11+; 3.10 below)
    import re._constants as _sre
    import re._parser as _sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

import ahocorasick_rs

# A sentence ends at white space after [.!?] before [A-Z0-9"'`(], or at line breaks: the rule
# (?<=[.!?])\s+(?=[A-Z0-9"'`(])|\n+, written to start with the white space it needs, so that the
# regex engine skips to white space instead of trying every offset (twice as fast, same splits).
_SENTENCE_RE = re.compile(r"\s(?:(?<=[.!?]\s)\s*(?=[A-Z0-9\"'`(])|(?<=\n)\n*)")


def sentences(text: str) -> list[str]:
    """Split prose into sentences (and lines: list items are sentences too)."""
    return [s.strip(" -*\t") for s in _SENTENCE_RE.split(text or "") if s and s.strip(" -*\t")]


def _rx(*patterns: str) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


CONSTRAINT = _rx(
    # the old set's patterns
    r"(?<!I )(?<!I'll )\b(?:must|mustn't|must not|shall not|have to|has to|needs? to|required to|is required)\b.{0,60}\b(?:keep|preserve|remain|stay|maintain|compatible|unchanged|pass|work|support)\b",
    r"\b(?:can't|cannot|can not|shouldn't|should not|must not|mustn't|don't|do not|never)\s+(?:modify|change|touch|edit|break|remove|delete|rename|alter|add)\b",
    r"\bwithout (?:breaking|changing|modifying|touching|altering|affecting)\b",
    r"\bbackwards?[- ]compatib",
    r"\b(?:preserve|keep|maintain)s?\b.{0,40}\b(?:public api|interface|signature|behaviou?r|format|compatib|existing)",
    r"\bonly (?:modify|change|touch|edit|use)\b",
    r"\b(?:constraint|requirement|restriction|invariant)s?\s*(?:is|are|here|:(?!\*)|—)|\bnon-negotiable\b",
    r"\b(?:is|are) (?:not allowed|forbidden|off-limits|read-only)\b|\benforc(?:e|es|ed|ing)\b",
    r"\b(?:can't|cannot|can not|must not|shouldn't) be (?:bypassed|skipped|changed|modified|removed|disabled|touched)\b",
    r"\b(?:the user|you) (?:specifically |explicitly )?(?:requested|asked|wants?|said|specified|required|insisted)\b",
    r"\bmake sure (?:not to|to not|we don't|I don't|it still|that .{0,40}(?:still|remains?|stays?|keeps?))",
    # a rule in plain words: "must", "must not", "never", "has to", "is supposed to"
    r"(?:^|[:;—-]\s*|\b(?:and|but|so|which|it|they|this|that|\w+)\s)must(?:n't| not)? (?!be (?:the|a|an|coming|related|because|doing|using|something|that|what|where|in|from|handled|caused)\b)(?:\w+)",
    r"\b(?:is|are) supposed to\b|\bper (?:your|the user's|the) (?:\S+ )?(?:preference|rule|instruction|guidance|convention)s?\b|\bper rule\b",
    r"\b(?:has|have|had) to (?:stay|remain|keep|be|travel|match|survive|happen|run|come|go|work)\b",
    r"\bneeds? to (?:stay|remain|be (?:preserved|kept|applied|called|explicit)|have nothing|match|survive|pass|agree|happen before)\b",
    r"(?:^never|\b(?:shouldn't|should not|must never|should never))\s+(?:be )?(?:delegat|touch|writ|read|push|commit|call|break|leak|chang|reset|overwrite|modif)\w*",
    r"\b(?:need to|should|must|have to) (?:sequence|keep|preserve)\b",
    r"\b(?:I|we) (?:can't|cannot|can not) (?!help\b|just\b|simply\b)(?:directly |completely )?\w+",
    r"\b(?:isn't|is not|aren't|are not|wasn't) (?:supported|allowed|possible)\b|\bisn't available until\b",
    r"\b(?:violates?|violating|required before|before touch)\b|\bonly (?:accepts?|supports?|allows?)\b",
)
CONSTRAINT_EXCLUDE = _rx(
    r"\bmust be (?:handled|caused|coming|doing|using|\w+ing)\b",
    r"\bif you want\b|\bsay the word\b|\b(?:wants|asked) me to\b",
)

PRUNING_EXCLUDE = _rx(r"\brather than (?:rely(?:ing)? on (?:an )?assumption|guess\w*|speculat\w+)")

PRUNING = _rx(
    # a choice: "rather than X, I'll Y", "I'll Y instead of X"
    r"^(?:rather than|instead of|instead,)\b",
    r"\b(?:rather than|instead of)\b.{0,160}\b(?:I'll|I will|I should|I'm going to|let me|I need to|I can|I'd|we can|we should|is (?:cleaner|simpler|safer|better))\b",
    r"\b(?:I'll|I will|I should|I'm going to|let me|I need to|I can|I'd|we should|decided to|choose to|better to|simpler to|safer to|I'm \w+ing|keep(?:ing)?|leav(?:e|ing)|handle this|stays with me)\b.{0,160}\b(?:rather than|instead of (?:\w+ing|just|the|a|an|manually|relying)\b)",
    r"^\w+ing\b.{0,60}\binstead of\b|\bapproach instead\b|\bI could\b[^,]{0,100}, but\b|\bI can't (?:just |simply )?\w+\b.{0,80}\b(?:since|because)\b",
    r"\bwould (?:risk|have cost)\b|\bviolates\b|\b(?:sidesteps|avoids|removes) the need\b|\bno (?:\w+ ){0,2}needed\b|\b(?:left|leave|leaving) (?:\w+ )?in place\b",
    r"\b(?:fixed by|by) using\b.{0,80}\binstead of\b|\band instead use\b|^used\b.{0,80}\binstead\b",
    r"\bI (?:considered|thought about|looked at|was going to)\b.{0,80}\b(?:but|however)\b",
    r"\b(?:won't|wouldn't|will not|would not|doesn't|does not|can't|cannot) (?:work|help)\b",
    r"\b(?:ruled out|decided against|rejected|abandon(?:ed)?|discard(?:ed)?|dropping) (?:the |this |that )?(?:idea|approach|option|plan|solution)?",
    r"\b(?:that|this|the first|the other|which|the naive|the simplest) (?:approach|option|idea|way|path) (?:would be|would|is|was|fails) (?:too|not|worse|overkill|fragile|risky|slower|wrong|because)\b",
    r"\bnot (?:going to|gonna) (?:use|go with|do)\b.{0,60}\b(?:because|since|as)\b",
    r"\bskip(?:ping)? (?:the |that |this |any |it\b|a )?(?:\w+ )?(?:approach|idea|option|overhead|step|build|tracking|delegation|shortcut)\b",
    r"\b(?:no need|not needed|isn't needed|not worth|feels redundant|overkill)\b",
    r"\b(?:leave|leaving|left|keep|keeping) (?:it|that|them|this|those|\w+ )?(?:alone|as[- ]is|unchanged|as they are)\b",
    r"\b(?:hold off|defer (?:the|this|that|it)\b|can wait until|beyond the (?:current )?scope|outside (?:this|the) (?:\S+ )?scope|out of scope)\b",
    r"\b(?:would|will) be wrong\b|\bdefeats? the (?:whole )?(?:point|purpose)\b|\b—\s*don't\b",
    r"\bcan't (?:just|simply) \w+|\bso I can't\b|\bcan't \w+ (?:it|them|this) (?:back|by)\b",
)

SELF_CORRECTION = _rx(
    r"^(?:actually|wait|hmm|oops)\b[,.!:]?|^(?:oh|ah)\b[,!—–-]|^I see\s*[-—–]|^(?:but|okay|ok|no),? (?:wait|actually)\b|[—–-]\s*(?:actually|wait)\b|\bactually, (?:wait|I|let me|looking|thinking|there's|this|the)\b",
    r"\b(?:I was wrong|I got (?:it |this |that )?wrong|I made (?:a|an) (?:mistake|error)|my (?:mistake|bad|error|fault)|that was (?:wrong|incorrect|a mistake)|corrects? me|correcting (?:one|that|my)|I need to correct)\b",
    r"\b(?:let me|I'll|I need to|I should) (?:correct|redo|revise|reconsider|re-check|recheck|rethink|revisit|step back|try again|retry)\b|\blet me fix (?:that|this|my|it)\b|\bI'll fix (?:that|this|my|it)\b|\bI need to fix (?:that|this|my|it)\b",
    r"\bon second thought\b|\bthinking about it more\b|\blooking at (?:this|it) more carefully\b|\bmore carefully\b",
    r"\b(?:that's|that is|this is|that isn't|this isn't) (?:not right|not correct|incorrect|wrong|not what)\b",
    r"\bI (?:misread|misunderstood|overlooked|missed|forgot|accidentally|mistakenly|wrongly|incorrectly)\b",
    r"\bI see (?:the|what the) (?:issue|problem|bug|mistake)\b.{0,40}\b(?:I|my)\b",
    r"\b(?:I'm|I am|I was|I've been|I had)\b.{0,40}\b(?:incorrect(?:ly)?|wrong(?:ly)?|mistaken|overcomplicating|conflating|miscounting)\b",
    r"\b(?:I'm|I am|I've|I have|I just|and I) ?(?:realiz|realis)(?:ing|ed|e)\b|\bI realized\b",
    r"\b(?:try|trying|take|use|need) (?:a )?(?:different|another|simpler|better) (?:approach|way|method|command|tack)\b",
    r"\blet me fix (?:it|that|this)\b|\bfixed by\b|\bredoing\b|\btry again\b|\b(?:redo|re-do)(?:ing)? (?:it|that|this|with)\b",
    r"\b(?:let me|I'll|I need to|I should) (?:completely |fully )?(?:rewrite|redo|rework|recalculate)\b",
    r"\b(?:do|doing|handle|implement) (?:this|it|that) (?:properly|correctly|right)\b",
    r"\bthat's the (?:bug|issue|problem|mistake)\b|\bmy (?:code|change|edit|fix|implementation|assumption|approach|test|scan|claim|brief|analysis|initial|earlier|first|previous|verification|\d+/\d+)\b.{0,60}\b(?:was|were|is|broke|missed|didn't|doesn't|failed|might be|turned out|relies)\b",
    r"\b(?:is|was|were) (?:wrong|misleading|flawed|an artifact|backwards|incomplete)\b|\bturned out (?:to be )?(?:wrong|incorrect)\b",
    r"\b(?:the|that|my) (?:previous|last|earlier|first) (?:attempt|command|edit|approach|call|pass|run|try) (?:failed|didn't work|was wrong|silently)\b",
    r"\b(?:it|that|the command|the edit|the test|my \w+|\w+) (?:failed|didn't work|got mangled|isn't working|is taking too long)\b.{0,80}\b(?:let me|I'll|trying|try|instead|switch|so I)\b",
    r"\b(?:switch(?:ing)?|go(?:ing)? back) to\b.{0,80}\binstead\b|\bI'm switching to\b|\bI'll switch to\b|\bI need to switch\b",
    r"\b(?:sorry|apologi[sz]e)\b",
    r"\bactually\b[^.]{0,80}\bnot\b|\bnot\b[^.]{0,40}\bactually\b|\b(?:isn't|aren't|doesn't|don't|wasn't|weren't|didn't) actually\b|\b(?:is|was) actually (?:the|a|an|meaningful|fine|correct|done|working)\b",
    r"\b(?:isn't|is not|wasn't)\b[^.]{0,80}(?:[—–,;])\s*it's\b|\b(?:flaw in|undermine|undermines) my\b|\b(?:revis(?:e|ing)|chang(?:es|ing)) (?:the|my) (?:\w+ )?(?:plan|strategy|approach)\b|\breplan\b",
    r"\bnot (?:a live bug|what I (?:thought|assumed|expected))\b|\bflips what I assumed\b|\bwasn't (?:broken|right|correct|the (?:root )?cause)\b",
)

ASSUMPTION = _rx(
    r"\bI(?:'ll| will|'m| am)? (?:assum|guess|presum|suppos)(?:e|ing)\b",
    r"\bassuming\b",
    r"\b(?:presumably|probably|likely|apparently|seemingly|maybe|perhaps|possibly)\b",
    r"\b(?:it|this|that|which) (?:should|ought to) (?:return|be|work|contain|exist|have)\b",
    r"\b(?:it|this|that|there|which|the \w+) (?:seems?|appears?|looks like)\b|^(?:seems|appears|looks like)\b",
    r"\bI (?:believe|think|suspect|expect)\b(?! (?:the|it's) (?:best|better|cleaner|simplest|cleanest))|\bI'm (?:not sure|uncertain)\b|\bnot sure\b",
    r"\b(?:should be|must be) (?:the|a|an|in|at|on)\b.{0,40}\b(?:since|because|given)\b",
    r"\b(?:might|may)(?! want\b| I\b| be worth\b) (?:be|have|not|still|need|share|pass|break|cause|skip|also|already|look|refer|affect|contain|come|fail|work|just|actually|mean|explain|require|conflict|\w+(?:ing|ed)\b)",
    r"\bcould (?:be|cause|break|create|mean|also be|theoretically|conflict|end up)\b|\bshould be (?:stable|fine|safe|correct)\b",
    r"\b(?:suggests?|suggesting|indicates?) (?:that |the |it |something )?|\bwhich would explain\b|\bmust be (?:handled|caused|coming|doing|using)\b",
    r"\bshould (?:still )?(?:pass|work|be fine|be safe|apply|resolve|definitely|render|be picked up)\b",
    r"\b(?:expect(?:ed|ing)?) (?:to|widespread|that|the)\b",
)
ASSUMPTION_EXCLUDE = _rx(r"\b(?:you|they|users?) (?:might|may) (?:want|prefer|need)\b")

VALIDATION = _rx(
    r"\b(?:let me|I'll|I will|now I'll|I'm going to|to|I should|I need to|I want to|now|then) (?:also )?(?:quickly )?(?:verify|double-check|double check|confirm|validate|check that|make sure|ensure|sanity[- ]check|re-?measure|re-?review|test (?:this|it|that|whether))\b",
    r"\b(?:run(?:s|ning)?|re-?run(?:ning)?) (?:the |a |all |every |my )?(?:full |final |quick |whole |existing |key |live |unit |go |full go )?(?:tests?|test suite|suite|lint(?:er)?|type ?check(?:er)?|build|checks?|benchmarks?|verification|smoke test|regression tests?)\b",
    r"\b(?:tests?|checks?|specs?|build|lint(?:er)?|suites?|vet|gates?|goldens?|manifest)\b.{0,30}\b(?:pass(?:es|ed|ing)?|succeed(?:s|ed)?|green|clean|completed successfully)\b",
    r"\ball (?:\w+ )?(?:passing|passed|pass|green|clean|verified)\b|^(?:all green|all pass|clean|verified|confirmed|good)\b",
    r"\bcompiles?\b.{0,20}\b(?:cleanly|successfully|without (?:errors|warnings))\b",
    r"\b(?:let me|let's|I'll|now) (?:test|compile|build|try running)\b",
    r"(?<![-\w])verif(?:y|ied|ying)\b|\b(?:confirms?|confirmed|confirming) (?:that|the|it|this|everything|nothing|against)\b|^confirmed\b",
    r"\bcheck (?:the )?(?:compilation|build|types|output|rendering)\b|\b(?:quick|final|last|sanity) check\b|\bdo a (?:quick )?check\b|\b(?:checked|cross-check(?:ed)?|proven|smoke test)\b|^(?:testing|checking|verifying)\b|\bexactly what I (?:suspected|needed|expected)\b",
    r"\b(?:tree|lint|commitlint|working tree|build|output|diff) (?:is |stays )?clean\b|\b(?:let me|I'll|I should|I need to) check (?:if|whether|that)\b.{0,80}\b(?:properly|correctly|still|works?)\b",
    r"\bsanity[- ]check\b|\bdouble-check\b|\bmutation-checked\b|\bchecks out\b|\b(?:works?|working|renders?|rendering|behaves) (?:correctly|as (?:expected|intended))\b",
    r"\b(?:matches?|matching) (?:the backup|what I expected|my assumption|the spec|expected)\b|\bas expected\b|\bno (?:new )?(?:violations|errors|regressions|differences)\b",
    r"\bcompar(?:e|ed|ing)\b.{0,40}\bagainst\b|\bcompare the tree|\bI checked\b|\breports? no\b|\breview (?:the|both|all|its|their)? ?(?:actual )?(?:diffs?|changes)\b",
)
VALIDATION_EXCLUDE = _rx(
    r"\b(?:doesn't|don't|didn't|not|never) (?:actually )?verif",
    r"\b(?:let me|I need to|I'll|I should) (?:check|see|look|figure out|find out) (?:if|whether|what|how|where|which|why)\b(?!.{0,80}\b(?:works?|passes|correct|broke|properly|fix|issues|errors|warnings|violations)\b)",
    r"\b(?:add|adding|write|writing|update|updating|rewrite|rewriting) (?:a |the |new |some )?(?:regression )?tests?\b(?!.{0,40}\b(?:pass|run|green)\b)",
)

COUNTERFACTUAL = _rx(
    r"\bif (?:we|I|you|it|this|that|the|short|a)\b.{0,80}\b(?:had|were|would|could)\b",
    r"\b(?:alternatively|another option|other option|another way|one alternative|an alternative|alternative (?:approach|is)|or better yet)\b",
    r"\b(?:could|might) (?:also|instead|alternatively)\b",
    r"^otherwise\b|\botherwise,? (?:the|it|we|you|I|a|this|that|there)\b.{0,60}\b(?:would|will|could|gets?|breaks?)\b|\bwould otherwise\b|[—–-]\s*otherwise\b|\bwhat if\b",
    r"\b(?:would|could|might) have (?:been|shipped|broken|dropped|baked|run|given|won|cost|failed)\b|\bwould've\b|\bI'd have\b",
    r"\bwithout (?:this|the|it|that)\b.{0,80}\b(?:would|will)\b",
    r"\b(?:either|whether to)\b.{0,120}\bor\b",
    r"\b(?:two|three|a few|several) (?:\w+ )?(?:approaches|options|directions|ways)\b|\bweighing\b|\bI could (?:also |potentially |try )?\w+",
    r"\b(?:would|will) (?:break|shift|clip|lose|leak|risk|cost|match|prevent|recurse|fail|be (?:an? )?(?:open|silent|wrong)|give|drop|read|cause|become)\b",
    r"\b(?:doing|moving|reversing|removing|making|calling|reimplementing|flipping|folding) (?:\w+ ){0,6}(?:would|doesn't help)\b",
)
COUNTERFACTUAL_EXCLUDE = _rx(r"^if you (?:want|'d like|like)\b|\b(?:let me know|want me to)\b",
                             r"\b(?:better|cleaner|simpler) (?:approach|way|fix|solution) would have been\b")

SAFETY_REFUSAL = _rx(
    r"\bI (?:can't|cannot|won't|will not|am not able to|'m not able to|must decline to) (?:help|assist|do that|comply|provide|write|create|run that)\b",
    r"\b(?:I'm|I am) (?:not comfortable|unable to help)\b",
    r"\bagainst (?:the |my )?(?:policy|guidelines)\b",
)

SAFETY_CAUTION = _rx(
    r"\b(?:be careful|careful:|heads up|note that this will)\b|^(?:warning|caution)\b\s*[:!,-]|\b(?:warning|caution):",
    r"\b(?:irreversible|destructive|cannot be undone|can't be undone|permanently delete|data loss|force[- ]push|with lease)\b",
    r"\bmake sure (?:you have|to have|you've got) (?:a )?backup|\b(?:created|create|keep|holds?) (?:a )?backup\b|\bbackup (?:branch|file|at)\b",
    r"\b(?:this|that|it) (?:will|would|could) (?:delete|overwrite|wipe|drop|erase)\b",
    r"\b(?:delete|wipe|drop|erase|destroy)\b.{0,30}\b(?:production|user data|all (?:the )?data|database)\b",
    r"\b(?:safe|safer|risk) to (?:proceed|rewrite|squash|amend|make)\b|\b(?:is|it's) safe\b|\bnot[- ](?:yet[- ])?pushed\b|\bunpushed\b|\bhasn't been pushed\b",
    r"\b(?:identity|data|secret|credential|token|email) leak|\bleak(?:s|ing)? (?:usernames|secrets|credentials|tokens|identity)|\bsecurity (?:issue|implications|risk)\b|\bSSRF\b|\bsanitiz\w+|\bpublic repo\b",
)

SELF_CRITIQUE = _rx(
    r"\bI should have\b|\bin hindsight\b",
    r"\b(?:a better|the better|a cleaner|a simpler) (?:approach|way|fix|solution) (?:would|might|could) (?:have been|be)\b",
    r"\b(?:my|the) (?:earlier|previous|first|initial) (?:approach|attempt|answer|fix|pass|assumption|count|claim|analysis) (?:was|wasn't|missed|didn't|silently)\b",
    r"\bI (?:overlooked|missed|didn't consider|did not consider|forgot to|accidentally|mistakenly)\b",
    r"\b(?:limitation|weakness|caveat)s? (?:of|in|is|here|\(documented\))\b|^known limitations\b|\btrade-?off (?:is|was)\b|\bthe trade for\b",
    r"\b(?:my own scripting error|were mine|wrong twice|mine to own)\b",
    r"\bmy (?:\S+ )?(?:trampoline|guard|test|tests|scan|regex(?:es)?|approach|verification|analysis|assumption|brief|plan|claim|goldens?|first pass|hard-fail fix|change)\b.{0,80}\b(?:was|were|is|never|broke|missed|didn't|doesn't|would|might be|relies|flawed|wrong|artifact|misleading)\b",
    r"\b(?:critical )?(?:flaw|issues?|gaps?|defects?|regression) (?:in|that undermine) my\b|\bundermine my\b|\b(?:would|could) have shipped\b",
    r"\b(?:would|could) have (?:broken|dropped|shipped|failed|baked)\b|\b(?:a|the) (?:\w+ )?regression (?:where|that|in)\b|\bsilent failure\b|\bdefeats the (?:whole )?(?:point|purpose)\b|\bstill the wrong\b|\bwas an artifact\b|\bturned out to be wrong\b",
    r"\b(?:real|coverage) gaps\b|\bconfirmed (?:correctness )?bugs\b|\bI got wrong\b|\b(?:stated|my) (?:cause|claim|count|premise)s? (?:was|were) wrong\b|\bmy \S+ (?:\S+ )?(?:didn't work|failed)\b",
    r"\bI'm (?:overcomplicating|conflating)\b|\bI put the \w+ (?:before|after|in the wrong)\b|\bI used the \w+ (?:before|after|in the wrong)\b|\bdidn't catch\b|\bnot verified\b",
)

PREFERENCE = _rx(
    r"\b(?:I|we|I'd|we'd) (?:would )?prefer\b|\bpreferable\b|\bprefer\w* .{0,40}\b(?:over|rather than)\b",
    r"\b(?:is|are|seems|looks|feels|fits) (?:\w+ )?(?:better|cleaner|simpler|safer|faster|preferable|more practical)\b",
    r"\b(?:the|a|an) (?:best|better|simplest|cleanest|safest|proper|right|cleaner|simpler|safer|more practical|more pragmatic|pragmatic) (?:option|approach|choice|way|fix|path|solution|design|call|source|direction)\b",
    r"\b(?:option|approach) (?:\(?[a-d]\)?|1|2|3|one|two)\b.{0,80}\b(?:better|worse|prefer|recommend|cleaner|simpler)",
    r"\bI (?:recommend|would recommend|suggest going with)\b|\bmy recommendation\b|\bleaning toward\b|\bI'd (?:go with|keep|rather)\b",
    r"^(?:better|cleaner approach|simpler|or better)\b|\bor better yet\b|\b(?:much |far )?(?:simpler|cleaner|better|safer) than\b|\bmore (?:surgical|valuable|practical)\b",
    r"\b(?:highest|top|lower-ranked|lowest) priorit(?:y|ies)\b|\bit's simpler to\b|\bmakes (?:more )?sense\b",
)
PREFERENCE_EXCLUDE = _rx(r"\bper (?:your|the user's) \S+ preference\b", r"\bwould have been\b", r"\bif there's a better\b")

PLAN = _rx(
    r"^(?:here'?s |here is )?(?:my |the )?plan\b|\bmy plan\b|\bplan:|\bI'm planning\b|\bper the plan\b|\blaying out the\b.{0,40}\bplan\b|\brevising the plan\b",
    r"\b(?:I'll|I will|let me|let's|we'll|I need to|I should|I'm going to)\b.{0,60}\b(?:first|step 1|start by|start with|starting with|starting by)\b.{0,200}\b(?:then|next|after that|afterwards|finally)\b|^(?:first|step 1),? .{0,200}\b(?:then|next|after that|finally)\b",
    r"\b(?:steps?|approach):\s*$|^(?:second|third|finally),|\bfirst, \w+ing\b.{0,200}\bsecond\b|, starting with\b",
    r"\b(?:let me|I'll|I will|I need to|I should|I'm going to|now I need to|I also need to|we need to|I can)\b[^.;?:]{0,160}?(?:,? (?:and )?then\b|, plus\b|, and I'll\b)",
    r"\b(?:let me|I'll|I will|I need to|I should|I'm going to)\b[^.;?:]{0,120}?\b\w+ [^.;?,()]{1,60}, \w+ [^.;?,()]{1,60}, and (?:\w+ly )?\w+\b",
    r"\b(?:and then|after that|once \w+ (?:lands?|finishes|is done)|next up|next:)\b.{0,40}\b(?:I'll|I will|let me|I can|move|run|kick off|handle|tackle|review)\b|^(?:then|next)\b.{0,60}\b(?:I'll|I need to|let me|I will|I'm going to)\b",
    r"^(?:read|update|run|check|build|add|fix|write|create|commit|test|move|remove|rebuild|regenerate|reproduce|review|verify|push|install|look|find|delete|rename|extract|wire|apply) [^.;?]{0,120}, then \w+",
    r"^(?:now )?(?:I'm )?\w+ing\b.{0,150}, then (?:\w+ing|I'll)\b|\bis to \w+\b.{0,150}, then\b|\bwait(?:ing)? for\b.{0,80}\bbefore \w+ing\b",
    r"\b(?:two|three|four|five|several) (?:\w+ ){0,2}(?:steps|phases|parallel tasks|tasks|pieces|decisions)\b|\bsequencing\b|\bphase \d\b.{0,40}\b(?:then|focused)\b",
)
_NUMBERED_RE = re.compile(r"^\s*(?:\d+[.)]|[-*])\s+\S", re.MULTILINE)


@dataclass(frozen=True)
class Detector:
    """A kind found where any pattern matches a sentence and no exclusion does (an exclusion
    names a common way the same words carry another meaning)."""

    kind: str
    patterns: list[re.Pattern[str]]
    exclude: list[re.Pattern[str]] = field(default_factory=list)


DETECTORS = [
    Detector("constraint", CONSTRAINT, CONSTRAINT_EXCLUDE), Detector("pruning", PRUNING, PRUNING_EXCLUDE),
    Detector("self_correction", SELF_CORRECTION), Detector("assumption", ASSUMPTION, ASSUMPTION_EXCLUDE),
    Detector("validation", VALIDATION, VALIDATION_EXCLUDE), Detector("counterfactual", COUNTERFACTUAL, COUNTERFACTUAL_EXCLUDE),
    Detector("safety_refusal", SAFETY_REFUSAL), Detector("safety_caution", SAFETY_CAUTION),
    Detector("self_critique", SELF_CRITIQUE), Detector("preference", PREFERENCE, PREFERENCE_EXCLUDE), Detector("plan", PLAN),
]
KINDS = [d.kind for d in DETECTORS]


def _items(seq) -> list:
    """A parsed regex sequence's items (a SubPattern's list: reading them one by one through the
    SubPattern is what the analysis would spend most of its time on)."""
    return seq.data if isinstance(seq, _sre_parse.SubPattern) else seq


def _literal_alternatives(op, av) -> list[str] | None:
    """The texts of a branch whose every alternative is plain literal text, else None."""
    if op is not _sre.BRANCH:
        return None
    texts = []
    for branch in map(_items, av[1]):
        if not branch or any(o is not _sre.LITERAL for o, _ in branch):
            return None
        texts.append("".join(chr(a) for _, a in branch))
    return texts


def _requirements(seq) -> list[frozenset[str]]:
    """Sets of lower-case literals such that every match of this parsed regex sequence contains
    one literal of each set (all the sets the analysis finds, in the order of the regex). A
    branch of plain words continues the literal text around it ("ha" + (s|ve|d) + " to" gives
    "has to", ...): the regex parser factors shared prefixes out of alternatives, which would
    otherwise leave "ha"."""
    found: list[frozenset[str]] = []
    runs = [""]
    for op, av in _items(seq):
        if op is _sre.LITERAL:
            runs = [r + chr(av) for r in runs]
            continue
        alternatives = _literal_alternatives(op, av)
        if alternatives is not None and len(runs) * len(alternatives) <= 64:
            runs = [r + a for r in runs for a in alternatives]
            continue
        if all(runs):
            found.append(frozenset(r.lower() for r in runs))
        runs = [""]
        if op is _sre.BRANCH:
            words = [_required_words(branch) for branch in av[1]]
            if all(words):
                found.append(frozenset().union(*words))
        elif op is _sre.SUBPATTERN:
            found += _requirements(av[-1])
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] >= 1:
            found += _requirements(av[2])
    if all(runs):
        found.append(frozenset(r.lower() for r in runs))
    return found


def _required_words(seq) -> frozenset[str] | None:
    """The most selective of _requirements(seq) (the one whose shortest literal is longest), or
    None where the analysis finds none."""
    best: frozenset[str] | None = None
    for words in _requirements(seq):
        if best is None or min(map(len, words)) > min(map(len, best)):
            best = words
    return best


_ZERO_WIDTH = (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT)  # they match no text
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT)


def _texts(op, av) -> list[str] | None:
    """Every text one parsed regex item can match, where they are few (at most 64), else None
    (assertions count as matching ""; the texts may be more than it matches, never fewer)."""
    if op is _sre.LITERAL:
        return [chr(av)]
    if op in _ZERO_WIDTH:
        return [""]
    if op is _sre.BRANCH:
        texts: list[str] = []
        for branch in av[1]:
            more = _sequence_texts(branch)
            if more is None or len(texts) + len(more) > 64:
                return None
            texts += more
        return texts
    if op is _sre.SUBPATTERN:
        return _sequence_texts(av[-1])
    if op in _REPEATS and av[1] == 1:
        once = _sequence_texts(av[2])
        return None if once is None else once if av[0] == 1 else ["", *once]
    return None


def _sequence_texts(seq) -> list[str] | None:
    runs = [""]
    for op, av in _items(seq):
        texts = _texts(op, av)
        if texts is None or len(runs) * len(texts) > 64:
            return None
        runs = [r + t for r in runs for t in texts]
    return runs


def _prefixes(seq) -> list[str]:
    """Texts one of which every match of this parsed regex sequence starts with (as written; [""]
    where the analysis finds none)."""
    runs = [""]
    for op, av in _items(seq):
        if op in _ZERO_WIDTH:
            continue
        more, last = _texts(op, av), False
        if more is None:  # a match of this item starts with one of these, and nothing is certain after it
            last = True
            if op is _sre.BRANCH:
                more = [p for branch in av[1] for p in _prefixes(branch)]
            elif op is _sre.SUBPATTERN:
                more = _prefixes(av[-1])
            elif op in _REPEATS and av[0] >= 1:
                more = _prefixes(av[2])
            else:
                break
        if len(runs) * len(more) > 64:
            break
        runs = [r + m for r in runs for m in more]
        if last:
            break
    return runs


def _anchor(seq, flags: int) -> frozenset[str] | bool | None:
    """Where every match of this parsed regex sequence starts: True at the start of the text (a
    "^" before any text, without re.MULTILINE), else at one of these lower-case literals (each
    of at least 3 characters), or None where the analysis cannot tell."""
    for op, av in _items(seq):
        if op is _sre.AT and av in (_sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING) and not flags & re.MULTILINE:
            return True
        if op not in _ZERO_WIDTH:
            break
    starts = frozenset(p.lower() for p in _prefixes(seq))
    return starts if min(map(len, starts)) >= 3 else None


def _alternatives(pattern: re.Pattern[str]) -> list[tuple[list[frozenset[str]], frozenset[str] | bool | None]]:
    """What a pattern needs, as alternatives (those of a top-level `A|B|C`, else the pattern
    itself), each its _requirements() and its _anchor(): a sentence can match only if, for some
    alternative, it holds a literal of every set, and a match of the alternative starts where
    one of its anchor's literals does. An empty list of sets: it always runs."""
    try:
        seq = _items(_sre_parse.parse(pattern.pattern, pattern.flags))
        branches = [j for j, (op, _) in enumerate(seq) if op is _sre.BRANCH]
        alternatives = [seq]
        if len(branches) == 1:  # the parser may have factored a shared start (a \b) out of A|B|C
            j = branches[0]
            alternatives = [seq[:j] + _items(branch) + seq[j + 1:] for branch in seq[j][1][1]]
        return [(_selective(_requirements(a)), _anchor(a, pattern.flags)) for a in alternatives]
    except Exception:  # an analysis this module cannot do: the pattern always runs
        return [([], None)]


def _selective(sets: list[frozenset[str]]) -> list[frozenset[str]]:
    """The sets worth looking for, the most selective first (the one whose shortest literal is
    longest), then any other whose literals are all long enough to be rare (a set holding " " or
    "e" is in nearly every sentence)."""
    if not sets:
        return []
    best = max(sets, key=lambda words: min(map(len, words)))
    return [best, *(w for w in sets if w is not best and min(map(len, w)) >= 3)]


# What str.lower() leaves that a case-insensitive regex still matches to an ASCII letter ("ſ"
# matches "s"; "İ" lowers to two characters): mapped first, so that a literal a pattern needs is
# found in the folded text wherever the pattern can match, at the same offsets.
_FOLD = str.maketrans({"ı": "i", "ſ": "s", "İ": "i"})


def fold(text: str) -> str:
    """`text` as the gates search it: lower case, one character for one."""
    if text.isascii() or not ("ı" in text or "ſ" in text or "İ" in text):
        return text.lower()
    return text.translate(_FOLD).lower()


class Gate:
    """Which of several regexes match a text, from one Aho-Corasick pass over it for the literals
    the patterns cannot match without (`_alternatives`): the literals of an alternative's most
    selective set name it, and a named alternative whose every set has a literal in the text
    makes its pattern a candidate (`Scan.candidates`); most texts hold none, or not all that a
    pattern needs, and a regex that cannot match is not run. A candidate every match of which
    starts with a literal of at least 3 characters, or at the start of the text (`_anchor`), is
    tried only there (`re.Pattern.match` at that offset: assertions still see the text before
    it), not at every offset of the text."""

    def __init__(self, patterns: list[re.Pattern[str]]):
        self.patterns = patterns
        alternatives = [(i, sets, anchor) for i, p in enumerate(patterns) for sets, anchor in _alternatives(p)]
        bit = {words: 1 << k for k, words in enumerate(dict.fromkeys(w for _, sets, _ in alternatives for w in sets))}
        in_sets: dict[str, int] = {}  # literal -> the sets it is in (a mask of `bit`)
        names: dict[str, set[int]] = {}  # literal -> the alternatives whose most selective set holds it
        for a, (_, sets, _) in enumerate(alternatives):
            for k, words in enumerate(sets):
                for literal in words:
                    in_sets[literal] = in_sets.get(literal, 0) | bit[words]
                    if k == 0:
                        names.setdefault(literal, set()).add(a)
        anchored = set(range(len(patterns))) - {i for i, _, anchor in alternatives if anchor is None}
        for i, _, anchor in alternatives:
            for literal in anchor if i in anchored and anchor is not True else ():
                in_sets.setdefault(literal, 0)
        index = {literal: k for k, literal in enumerate(in_sets)}
        self.matcher = ahocorasick_rs.AhoCorasick(list(in_sets))
        self.in_sets = list(in_sets.values())
        self.names = [frozenset(names.get(literal, ())) for literal in in_sets]
        self.pattern = [i for i, _, _ in alternatives]  # alternative -> its pattern
        self.needs = [sum(bit[w] for w in set(sets)) for _, sets, _ in alternatives]  # alternative -> its sets (a mask)
        self.always = frozenset(i for i, sets, _ in alternatives if not sets)  # patterns an alternative of which needs nothing
        # pattern -> where its matches can start: at the text's start or not, and the literals (indices)
        self.anchors: list[tuple[bool, frozenset[int]] | None] = [None] * len(patterns)
        anchors: dict[int, list[frozenset[str] | bool]] = {}
        for i, _, anchor in alternatives:
            anchors.setdefault(i, []).append(anchor)
        for i in anchored:
            self.anchors[i] = (True in anchors[i], frozenset(index[w] for a in anchors[i] if a is not True for w in a))

    def scan(self, text: str) -> Scan:
        return Scan(self, text)


class Scan:
    """One text's Aho-Corasick pass (Gate): the patterns that can match it, and whether one does."""

    __slots__ = ("gate", "text", "found", "candidates")

    def __init__(self, gate: Gate, text: str):
        self.gate, self.text = gate, text
        self.found = gate.matcher.find_matches_as_indexes(fold(text), overlapping=True)
        literals = {i for i, _, _ in self.found}
        if not literals:
            self.candidates = sorted(gate.always)
            return
        held = reduce(or_, map(gate.in_sets.__getitem__, literals))
        needs, pattern = gate.needs, gate.pattern
        self.candidates = sorted(gate.always.union(pattern[a] for a in frozenset().union(
            *map(gate.names.__getitem__, literals)) if needs[a] & held == needs[a]))  # the patterns, in order

    def matches(self, i: int) -> bool:
        """Whether pattern i (a candidate) matches the text."""
        rx, anchors = self.gate.patterns[i], self.gate.anchors[i]
        if anchors is None:
            return rx.search(self.text) is not None
        at_start, literals = anchors
        starts = {start for k, start, _ in self.found if k in literals}
        if at_start:
            starts.add(0)
        return any(rx.match(self.text, start) for start in sorted(starts))


_PATTERNS = PATTERNS = [p for d in DETECTORS for p in d.patterns]
_OWNER = [d.kind for d in DETECTORS for _ in d.patterns]
_EXCLUSIONS = [(d.kind, x) for d in DETECTORS for x in d.exclude]
_GATE = Gate(_PATTERNS + [x for _, x in _EXCLUSIONS])  # the exclusions after the patterns


def _excluded(scan: Scan, kinds: set[str]) -> set[str]:
    """`kinds` but those an exclusion of which matches the scanned sentence."""
    n = len(_PATTERNS)
    return kinds - {_EXCLUSIONS[j - n][0] for j in scan.candidates
                    if j >= n and _EXCLUSIONS[j - n][0] in kinds and scan.matches(j)}


def pattern_hits(sentence: str) -> tuple[list[int], set[str]]:
    """Every pattern (index into PATTERNS) that matches one sentence, and the kinds the
    detectors find in it (a kind whose exclusion matches is not found): the classifier's
    rule features."""
    scan = _GATE.scan(sentence)
    n = len(_PATTERNS)
    hit = [i for i in scan.candidates if i < n and scan.matches(i)]
    return hit, _excluded(scan, {_OWNER[i] for i in hit}) if hit else set()


def kinds_of(sentence: str) -> set[str]:
    """The kinds the phrase detectors find in one sentence."""
    scan = _GATE.scan(sentence)
    matched: set[str] = set()
    for i in scan.candidates:
        if i < len(_PATTERNS) and _OWNER[i] not in matched and scan.matches(i):
            matched.add(_OWNER[i])
    return _excluded(scan, matched) if matched else matched


def detect(text: str) -> dict[str, list[str]]:
    """Sentences of `text` per detector kind."""
    found: dict[str, list[str]] = {k: [] for k in KINDS}
    for s in sentences(text):
        matched = kinds_of(s)
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
