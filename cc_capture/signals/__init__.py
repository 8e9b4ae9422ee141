"""Reasoning signals of a trace, its 35-dimension behaviour vector, and the quality gates.

Pure functions of a `TraceView`: nothing here reads the daemon or the CLI (DESIGN.md).
"""

# 2: phrase detectors rewritten by meaning against tests/fixtures/signals/ (tuned on its dev
#    split only), with exclusions; more test/lint/typecheck commands count as checks
# 3: sentences are decided by a classifier trained on the dev split (classify.py) over the
#    detectors' pattern hits, the words and the sentence's place in the trace (after a failed
#    call, before a check, an edit or a read, or in the answer)
# 4: the classifier also reads the sentence before (its words) and cue groups from the labelling
#    rules; one configuration for every signal and precision-favouring thresholds, chosen by
#    cross-validation over dev sessions; trained on more dev sentences (batch 3)
# 5: retrained by the same method on nearly twice the dev sentences (batch 4: the ordinary ones
#    too); cross-validation now keeps the detectors for self-correction and preference and the
#    classifier for assumption and counterfactual
EXTRACTOR_VERSION = 5
