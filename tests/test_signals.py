"""Signals: labelled accuracy (floors under benchmarks/signals_accuracy.py), trace-level rules,
the 35-dimension vector, quality gates, and when the daemon and `ccd` compute them."""

import importlib
import json
import sys
from pathlib import Path

import pytest

from cc_capture.config import GateSettings
from cc_capture.signals import EXTRACTOR_VERSION, classify, phrases
from cc_capture.signals.evaluate import load, score, score_rows, unlabelled, wilson
from cc_capture.signals.extract import extract, text_contexts
from cc_capture.signals.gates import decide
from cc_capture.signals.model import TraceView
from cc_capture.signals.runner import compute_pending, stale
from cc_capture.signals.vector import DIMENSIONS, VECTOR_NAMES, cosine, vector
from cc_capture.transcripts.importer import sync_sessions
from conftest import ccd, emit, ingest_all, trace_json
from support.traces import call, trace

FIXTURES = Path(__file__).parent / "fixtures"
LABELLED = [json.loads(l) for l in (FIXTURES / "signals_labelled.jsonl").read_text().splitlines()]
TRACES = json.loads((FIXTURES / "signals_traces.json").read_text())
REAL = load(FIXTURES / "signals")


def precision_recall(rows):
    stats = {k: [0, 0, 0] for k in phrases.KINDS}
    for r in rows:
        got = {k for k, v in phrases.detect(r["text"]).items() if v}
        for k in phrases.KINDS:
            want = k in r["labels"]
            stats[k][0 if (k in got and want) else 1 if k in got else 2 if want else 0] += (k in got) or want
    return {k: (tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0) for k, (tp, fp, fn) in stats.items()}


def test_labelled_set_is_large_and_varied():
    assert len(LABELLED) + len(TRACES) >= 80
    assert sum(1 for r in LABELLED if not r["labels"]) >= 40  # negatives
    assert {r["source"] for r in LABELLED} == {"written", "transcript", "transcript-heldout"}
    assert set(k for r in LABELLED for k in r["labels"]) == set(phrases.KINDS)


@pytest.mark.parametrize("kind", phrases.KINDS)
def test_precision_and_recall_floor(kind):
    p, r = precision_recall(LABELLED)[kind]
    assert p >= 0.8 and r >= 0.8, (kind, p, r)


def test_real_labelled_set_has_a_fixed_session_split():
    """1,000+ real sentences, every one labelled, each session wholly in one split."""
    assert len(REAL) >= 1000 and len({r.id for r in REAL}) == len(REAL)
    assert unlabelled(FIXTURES / "signals") == []  # load() would leave them out
    splits = {}
    for r in REAL:
        assert splits.setdefault(r.session, r.split) == r.split, r.session
        assert r.labels <= set(phrases.KINDS), r.labels
    heldout = sum(r.split == "heldout" for r in REAL)
    assert heldout >= 1400 and 0.25 <= heldout / len(REAL) <= 0.5  # batch 4 added dev sentences only
    assert sum(1 for r in REAL if not r.labels) >= 300  # ordinary sentences too
    # the sessions the older set's transcript sentences came from are never held out
    old = {r["text"] for r in LABELLED if r["source"] != "written"}
    assert not [r.text for r in REAL if r.split == "heldout" and r.text in old]


@pytest.mark.parametrize("name, splits, batches, least", [
    ("agreement.jsonl", {"dev"}, {1}, 100),
    ("agreement3.jsonl", {"dev", "heldout"}, {3}, 150),  # batch 3's parts held both splits' sentences
    ("agreement5.jsonl", {"dev"}, {1, 2, 3, 4}, 1600),
])
def test_agreement_sets_relabel_the_sentences_they_name(name, splits, batches, least):
    """The agreement files: a further labeller's blind labels of sentences of the set (only dev ones
    where the file says so), each sentence once, none relabelled in two files."""
    rows = {r.id: r for r in REAL}
    second = [json.loads(l) for l in (FIXTURES / "signals" / name).read_text().splitlines()]
    assert len(second) >= least and len({r["id"] for r in second}) == len(second)
    for r in second:
        assert rows[r["id"]].split in splits and rows[r["id"]].batch in batches, r
        assert set(r["labels"]) <= set(phrases.KINDS), r
    others = {json.loads(l)["id"] for f in ("agreement.jsonl", "agreement3.jsonl", "agreement5.jsonl") if f != name
              for l in (FIXTURES / "signals" / f).read_text().splitlines()}
    assert not others & {r["id"] for r in second}


def test_real_labelled_set_is_rebuilt_exactly_by_its_script(shared):
    """sentences.jsonl is what build_sentences.py draws from ../shared (labels are by hand)."""
    build_sentences = _fixture_script("build_sentences")
    rebuilt = build_sentences.build(shared)
    stored = [json.loads(l) for l in (FIXTURES / "signals" / "sentences.jsonl").read_text().splitlines()]
    assert [(r["id"], r["text"], r["split"]) for r in rebuilt] == [(r["id"], r["text"], r["split"]) for r in stored]
    # and each sentence's place in its transcript, which the classifier reads
    keys = ("batch", "before", "after_error", "next_call")
    assert [tuple(r[k] for k in keys) for r in rebuilt] == [tuple(r[k] for k in keys) for r in stored]


def test_score_and_wilson_interval():
    from cc_capture.signals.evaluate import Sentence
    rows = [Sentence("a", "Let me run the tests.", "dev", "s", frozenset({"validation"})),
            Sentence("b", "The file is long.", "dev", "s", frozenset())]
    s = score(rows, ["validation"], lambda text: {"validation": ["x"]})["validation"]
    assert (s.tp, s.fp, s.fn, s.precision, s.recall, s.headline) == (1, 1, 0, 0.5, 1.0, False)
    lo, hi = wilson(8, 10)
    assert 0.48 < lo < 0.5 and 0.94 < hi < 0.95  # the textbook 95% Wilson interval of 8/10
    assert wilson(0, 0) is None and wilson(0, 5)[0] == 0.0


# Floors on the dev split of tests/fixtures/signals/ as the v2 detectors were tuned on it (batch 1;
# the held-out split is reported by benchmarks/signals.py, never asserted on or tuned against).
DEV_FLOORS = {  # kind: (precision, recall), a little under what extractor v2 measures
    "constraint": (0.6, 0.7), "pruning": (0.6, 0.7), "self_correction": (0.8, 0.75), "assumption": (0.7, 0.75),
    "validation": (0.75, 0.75), "counterfactual": (0.65, 0.6), "self_critique": (0.8, 0.75),
    "preference": (0.8, 0.75), "plan": (0.75, 0.4),
}


@pytest.mark.parametrize("kind", sorted(DEV_FLOORS))
def test_dev_split_floor(kind):
    s = score([r for r in REAL if r.split == "dev" and r.batch == 1], [kind], phrases.detect)[kind]
    assert s.headline, (kind, s.positives)
    assert s.precision >= DEV_FLOORS[kind][0] and s.recall >= DEV_FLOORS[kind][1], (kind, s)


# Ordinary ways of saying things that the first detectors missed or misread (issue 14), and
# the examples of tests/fixtures/signals/LABELLING.md
MEANINGS = [
    ("self_correction", True, "The path is actually relative to the repo root, not the home directory."),
    ("self_correction", True, "Ah, I see — the hook runs before the config loads."),
    ("self_correction", True, "Sorry, I edited the wrong file."),
    ("self_correction", True, "My test failed because I renamed the fixture."),
    ("self_correction", False, "I see the file defines three classes."),
    ("constraint", True, "Must keep the public API unchanged."),
    ("constraint", True, "Never commit directly to main."),
    ("constraint", True, "You must run the linter before committing."),
    ("plan", True, "Read the config, then update the parser."),
    ("plan", True, "I'll read the parser, then add the new field."),
    ("assumption", True, "The cache might be stale."),
    ("assumption", True, "It may need a restart."),
    ("assumption", True, "The build seems to skip the slow tests."),
    ("assumption", False, "You might want to restart the shell."),
    ("validation", True, "Run the full test suite."),
    ("validation", True, "Let me check the compilation."),
    ("validation", True, "All clean."),
    ("validation", False, "Let me check if the config file exists."),
    ("pruning", True, "Rather than patching the regex, I'll parse the JSON properly."),
    ("pruning", False, "It now uses a map instead of a list."),
    ("counterfactual", True, "Without the lock, two writers would corrupt the file."),
    ("counterfactual", True, "Alternatively, we could read the setting from the environment."),
    ("self_critique", True, "My first fix was a hack."),
    ("preference", True, "Option B is cleaner because it keeps the API."),
    ("preference", True, "I'd go with the environment variable rather than a flag."),
]


@pytest.mark.parametrize(("kind", "want", "text"), MEANINGS, ids=[f"{k}-{w}-{i}" for i, (k, w, _) in enumerate(MEANINGS)])
def test_phrase_meanings(kind, want, text):
    assert bool(phrases.detect(text)[kind]) is want, (kind, text, phrases.detect(text))


def test_classifier_weights_were_trained_on_these_detector_patterns():
    """sentence_weights.json names detector patterns by index: a changed pattern needs a retrain."""
    data = json.loads(classify.WEIGHTS.read_text())
    assert data["patterns"] == classify.patterns_digest()
    assert sorted(m.kind for m in classify.models().models) == sorted(phrases.KINDS)
    assert {m.kind for m in classify.models().models if m.method == "classifier"}  # something was learnt


def _fixture_script(name: str):
    """A script of tests/fixtures/signals (not a package) imported as a module."""
    sys.path.insert(0, str(FIXTURES / "signals"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def test_classifier_decisions_are_unchanged():
    """Inference makes only the feature families the shipped weights use and sums the weights as
    columns: every sentence of the set gets the decisions recorded before those changes
    (decisions.json, by record_decisions.py), through classify() and through detect(), and the
    complete training-time features decide the same as the pruned ones."""
    record_decisions = _fixture_script("record_decisions")
    assert record_decisions.decisions() == json.loads(record_decisions.DECISIONS.read_text())
    models = classify.models()
    assert models.families < classify.FAMILIES  # some family is left unmade (b:, f2: have no weights)
    for r in REAL:
        assert models.decide(classify.features(r.text, r.context), phrases.kinds_of(r.text)) == \
            classify.classify(r.text, r.context), r.id


def test_remembered_decisions_are_those_made_afresh(monkeypatch):
    """Inference remembers what a sentence alone decides and what a set of features decides: a
    sentence met again, in the same place or another (after a failure, before a check, after
    another sentence), is decided as the training-time features decide it, also once the memory
    has filled and started again."""
    models = classify.models()
    rows = REAL[::40]
    places = [classify.Context(), classify.Context(True, "check", "The tests failed:"),
              classify.Context(False, "", rows[0].text)]
    cases = [(r.text, place) for r in rows for place in places + [r.context]]
    want = [models.decide(classify.features(text, place), phrases.kinds_of(text)) for text, place in cases]
    models.remembered.clear()
    assert [classify.classify(text, place) for text, place in cases] == want
    remembered = len(models.remembered)
    assert remembered < classify.REMEMBERED  # nothing forgotten yet
    assert [classify.classify(text, place) for text, place in reversed(cases)] == want[::-1]
    assert len(models.remembered) == remembered  # all met again
    monkeypatch.setattr(classify, "REMEMBERED", 50)
    models.remembered.clear()
    assert [classify.classify(text, place) for text, place in cases] == want
    assert len(models.remembered) <= 50


def test_what_inference_remembers_stays_small():
    """Long sentences (a line of code or data with no sentence break) and long commands (heredocs)
    are decided but not remembered: the daemon's memory is bounded by the number of entries."""
    from cc_capture.signals import extract

    models = classify.models()
    models.remembered.clear()
    long = "Let me run the tests and check " + "x" * 20_000
    assert classify.classify(long, classify.Context()) == models.decide(
        classify.features(long, classify.Context()), phrases.kinds_of(long))
    assert not models.remembered
    classify.classify("Let me run the tests.", classify.Context())
    assert len(models.remembered) == 2  # the sentence alone, and in its place
    heredoc = "pytest -q <<'EOF'\n" + "x" * 20_000 + "\nEOF"
    before = extract._remembered_check_kind.cache_info().currsize
    assert extract.check_kind(_call("Bash", heredoc)) == extract._check_kind(heredoc) == "tests"
    assert extract._remembered_check_kind.cache_info().currsize == before


def test_shipped_weights_are_what_the_training_script_produces():
    """sentence_weights.json's weights are the training script's refit, on the dev split, of the
    configuration, per-signal method and thresholds the file names (those three are read from the
    file, not re-derived here: choosing them again is the script's 4-minute cross-validation):
    refitted here, every feature carries the same weight (pruning aside) and every classifier the
    same bias, the dev split is the one the file says it was trained on, and dev sentences get the
    script's scores (before pruning) and the same decisions."""
    tc = _fixture_script("train_classifier")
    shipped = json.loads(classify.WEIGHTS.read_text())
    dev = tc.dev_rows()
    feats, y = tc.dev_matrix(dev)
    config, report = tc.shipped_report()
    vocab, w, b = tc.refit(feats, y, config)
    rebuilt = tc.document(dev, feats, y, config, report, (vocab, w, b))
    assert (rebuilt["trained_on"], rebuilt["patterns"]) == (shipped["trained_on"], shipped["patterns"])
    for kind, want in shipped["kinds"].items():
        got = rebuilt["kinds"][kind]
        assert got["bias"] == pytest.approx(want["bias"], abs=0.005), kind
        for f in set(got["weights"]) | set(want["weights"]):
            if f in got["weights"] and f in want["weights"]:
                assert got["weights"][f] == pytest.approx(want["weights"][f], abs=0.005), (kind, f)
            else:  # only at the pruning edge
                assert abs(got["weights"].get(f, want["weights"].get(f))) < tc.MIN_WEIGHT + 0.005, (kind, f)
    rows = dev[::100]
    script = tc.matrix([feats[i] for i in range(0, len(dev), 100)], vocab) @ w + b  # the script's own logits
    models, remade = classify.models(), classify.build(rebuilt)
    for i, r in enumerate(rows):
        f, rule_kinds = classify.features(r.text, r.context), phrases.kinds_of(r.text)
        assert models.decide(f, rule_kinds) == remade.decide(f, rule_kinds) == classify.classify(r.text, r.context)
        shipped_scores = dict(zip((m.kind for m in models.models), models.scores(f)))
        for j, kind in enumerate(tc.KINDS):
            if shipped["kinds"][kind]["method"] == "classifier":
                assert shipped_scores[kind] == pytest.approx(float(script[i, j]), abs=0.25), (kind, r.text)


def _folded_as_shipped(embeddings, vectors, dim: int, scale: float, dev):
    """Fit embeddings.py's regression over dev's binary features and the sum of its sentences'
    unique words' vectors, fold it into `u:word` weights, check the fold scores every sentence as
    the unfolded model does (in numpy and through the shipped inference code, classify.build and
    Models.scores); return (the binary features' vocabulary, the folded feature names, the built
    models, unfold(text, context): the unfolded model's scores of any sentence in tc.KINDS order,
    column: kind -> its place in the models' scores)."""
    import numpy as np

    tc = _fixture_script("train_classifier")
    feats, y = tc.dev_matrix(dev)
    texts = [r.text for r in dev]
    vocab = tc.vocabulary(feats, tc.GROUPS["unigrams+verdicts+cues+before-cues+patterns"])
    x = embeddings.WithDense(tc.matrix(feats, vocab), scale * vectors.sums(texts, dim))
    w, b = tc.fit(x, y, np.full(len(tc.KINDS), 0.003, np.float32), tc.positive_weight(y, "none"))
    unfolded = x @ w + b
    names, folded = embeddings.fold(vocab, w, vectors, dim, scale)
    assert np.abs(tc.matrix(feats, names) @ folded + b - unfolded).max() < 1e-4
    models = classify.build({"kinds": {kind: {"method": "classifier", "bias": float(b[j]), "threshold": 0.0,
                                              "weights": {f: float(v) for f, v in zip(names, folded[:, j]) if v}}
                                       for j, kind in enumerate(tc.KINDS)}})
    column = {kind: next(i for i, m in enumerate(models.models) if m.kind == kind) for kind in tc.KINDS}
    for i, r in enumerate(dev):
        scores = models.scores(classify.features(r.text, r.context))
        assert [scores[column[k]] for k in tc.KINDS] == pytest.approx(unfolded[i].tolist(), abs=1e-3), r.text

    def unfold(text: str, context: classify.Context) -> list[float]:
        one = embeddings.WithDense(tc.matrix([classify.features(text, context)], vocab), scale * vectors.sums([text], dim))
        return (one @ w + b)[0].tolist()

    return vocab, names, models, unfold, column


def test_embedding_part_folds_exactly_into_unigram_weights():
    """embeddings.py (tried for issue 14, not shipped): a regression over binary features and the
    sum of a sentence's unique words' embeddings folds into plain `u:word` weights, which the
    shipped inference code (classify.build, Models.scores) scores as the unfolded model does;
    the embeddings are the same from the same corpus. Small: 300 dev sentences, their own words
    as the corpus (the script's corpus is the dev sessions' transcripts in ../shared)."""
    import numpy as np

    embeddings = _fixture_script("embeddings")
    dev = _fixture_script("train_classifier").dev_rows()[::13]
    blocks = [classify._WORD_RE.findall(r.text.lower()) for r in dev]
    emb = embeddings.Embeddings(blocks)
    assert 100 < len(emb.words) and np.array_equal(emb.full, embeddings.Embeddings(blocks).full)
    vocab, names, *_ = _folded_as_shipped(embeddings, emb, 16, 0.3, dev)
    assert len(names) > len(vocab)  # words the corpus has and the vocabulary lacks get a weight


def test_pretrained_vectors_fold_into_a_weight_for_every_word_of_the_table(tmp_path):
    """embeddings.py --glove (issue 14): pretrained vectors, here a handful of made-up ones (CI
    has no GloVe): only the table's `top` rows that are words as `u:` features make them are
    kept, unit-length; the fit folds exactly into `u:word` weights (checked on 300 dev sentences
    through the shipped inference code), and EVERY kept word gets a weight, also words no
    labelled sentence has, so a sentence using one is scored as the unfolded model scores it;
    a GloVe file whose digest is not the recorded one is refused."""
    import numpy as np

    embeddings = _fixture_script("embeddings")
    tc = _fixture_script("train_classifier")
    dev = tc.dev_rows()[::13]
    seen = sorted({w for r in dev for w in classify._WORD_RE.findall(r.text.lower())})
    unseen = ["zorblax", "quindle"]  # in no labelled sentence
    words = [",", "u.s.", "'s", *seen[::4], *unseen, "beyondtop"]
    table = np.random.default_rng(0).standard_normal((len(words), 8)) * 5
    vectors = embeddings.Pretrained(words, table, top=len(words) - 1)
    assert vectors.words == [*seen[::4], *unseen]  # not ",", "u.s." or "'s" (no `u:` word), nor the row past the top
    assert np.allclose(np.linalg.norm(vectors.vectors(8), axis=1), 1.0, atol=1e-6)
    vocab, names, models, unfold, column = _folded_as_shipped(embeddings, vectors, 8, 1.0, dev)
    assert not {f"u:{w}" for w in unseen} & set(vocab) and {f"u:{w}" for w in vectors.words} <= set(names)
    context = classify.Context(next_call="check")
    plain, novel = "Let me run it.", "Let me run zorblax quindle."
    for text in (plain, novel):
        got = models.scores(classify.features(text, context))
        assert [got[column[k]] for k in tc.KINDS] == pytest.approx(unfold(text, context), abs=1e-3)
    assert models.scores(classify.features(novel, context)) != models.scores(classify.features(plain, context))
    (tmp_path / "glove_6B_50d_emb.npy").write_bytes(b"not the vectors")
    with pytest.raises(SystemExit, match="SHA-256"):
        embeddings.Pretrained.glove(tmp_path, 10)


def test_training_and_extraction_contexts_of_the_set_agree(shared):
    """The context each set sentence was trained and measured in (before, after_error,
    next_call) is, for all but a few, the one extraction gives it through the real import of
    ../shared (context_gap.py; README: 335 of 4,823 differ today, none in after_error): a change
    to build_sentences.py or extract.text_contexts that set them apart fails here."""
    context_gap = _fixture_script("context_gap")
    gap = context_gap.measure(context_gap.contexts(context_gap.stored_texts(shared)))
    assert gap.found >= 4700 and gap.differ <= 400, gap
    assert gap.by_field["after_error"] == 0 and gap.by_field["next_call"] <= 150, gap
    assert sum(gap.moved.values()) <= 45, gap


# Floors on the dev split for the classifier (it is trained on all of dev: these figures are
# in-sample, a guard against a broken retrain, not a measure; benchmarks/signals.py reports the
# held-out ones), a little under what the extractor measures. Where cross-validation kept the
# detectors' verdict for a signal, the verdict must be theirs (test_dev_split_floor holds it).
# v5 measures, on 4,090 dev sentences (batch 4 added 1,902 ordinary ones, so in-sample recall is
# lower than v4's on 2,188): assumption 0.72 / 0.88, counterfactual 0.76 / 0.78, plan 0.87 / 0.65,
# validation 0.89 / 0.71.
CLASSIFIER_DEV_FLOORS = {
    "constraint": (0.75, 0.9), "pruning": (0.5, 0.9), "self_correction": (0.8, 0.65), "assumption": (0.7, 0.85),
    "validation": (0.85, 0.68), "counterfactual": (0.72, 0.75), "self_critique": (0.9, 0.6),
    "preference": (0.8, 0.7), "plan": (0.85, 0.62),
}


@pytest.mark.parametrize("kind", sorted(CLASSIFIER_DEV_FLOORS))
def test_classifier_dev_floor(kind):
    dev = [r for r in REAL if r.split == "dev"]
    s = score_rows(dev, [kind], lambda r: classify.classify(r.text, r.context))[kind]
    assert s.headline, (kind, s.positives)
    if {m.kind: m.method for m in classify.models().models}[kind] == "rules":
        assert s == score_rows(dev, [kind], lambda r: phrases.kinds_of(r.text))[kind]
    else:
        assert s.precision >= CLASSIFIER_DEV_FLOORS[kind][0] and s.recall >= CLASSIFIER_DEV_FLOORS[kind][1], (kind, s)


def _call(name, command=None, is_error=False, batch=None, reasoning="", agent=None, path=None):
    return call(name, {"command": command} if command else {"file_path": path}, is_error=is_error,
                error="boom" if is_error else None, reasoning=reasoning, agent_id=agent, batch=batch)


def test_each_text_is_classified_in_its_place_in_the_trace():
    """The classifier reads whether the batch before a text failed and what call the text leads to."""
    t = TraceView(trace([
        _call("Bash", "make", is_error=True, batch=1, reasoning="Let me build it."),
        _call("Read", path="/a.py", batch=1),
        _call("Edit", path="/a.py", batch=2, reasoning="The build failed, so I'll fix the import."),
        _call("Bash", "pytest -q", batch=3, reasoning="Now the tests."),
        _call("Bash", "ls", is_error=True, batch=7, agent="sub", reasoning="Looking around."),
        _call("Grep", batch=8, agent="sub", reasoning="Searching instead."),
    ], "Done."))
    assert text_contexts(t) == [
        ("Let me build it.", False, "check"), ("The build failed, so I'll fix the import.", True, "edit"),
        ("Now the tests.", False, "check"), ("Looking around.", False, "read"), ("Searching instead.", True, "read"),
        ("Done.", False, ""),
    ]


@pytest.mark.parametrize(("command", "kind"), [
    ("npm run lint", "lint"), ("pnpm typecheck", "typecheck"), ("Invoke-Pester -Path tests", "tests"),
    ("deno test -A", "tests"), ("go test ./...", "tests"), ("cat README.md", None),
])
def test_check_commands(command, kind):
    from cc_capture.signals.extract import check_kind
    assert check_kind(call("Bash", {"command": command})) == kind


def view(case, status: str | None = None, feedback: str | None = None) -> TraceView:
    """A labelled case as a stored trace (12 s long), optionally with another status or a rating."""
    calls = [call(c["name"], c["input"], output=c["output"], is_error=c["is_error"], error=c["error"],
                  reasoning=c["reasoning"], agent_id=c["agent_id"], batch=c["batch"]) for c in case["calls"]]
    return TraceView(trace(calls, case["final"], trace_id=case["id"], prompt=case["prompt"],
                           status=status or case.get("status", "completed"), duration_s=12.0, feedback=feedback))


@pytest.mark.parametrize("case", TRACES, ids=[t["id"] for t in TRACES])
def test_trace_level_signals(case):
    t = view(case)
    s = extract(t)
    v = dict(zip(VECTOR_NAMES, vector(t, s)))
    ok, reasons = decide(t, s, GateSettings())
    for key, want in case["expect"].items():
        got = {
            "errors": s.error_recovery.errors, "recovered": s.error_recovery.recovered,
            "redundant_calls": s.tool_efficiency.redundant_calls, "tool_efficiency": s.tool_efficiency.ratio,
            "repeated_files": s.edit_history.repeated_files, "cites_sources": s.provenance.cites_sources,
            "validation_kinds": [c.kind for c in s.validation_checks if c.kind != "self_check"],
            "min_self_corrections": len(s.self_corrections) >= want if key == "min_self_corrections" else None,
            "min_constraints": len(s.constraints_detected) >= want if key == "min_constraints" else None,
            "min_pruning": len(s.pruning_decisions) >= want if key == "min_pruning" else None,
            "has_plan": bool(s.explicit_plan), "qualifies": ok,
            "exploration_fit": v["exploration_fit"], "validation_completeness": v["validation_completeness"],
            "task_success": v["task_success"],
        }.get(key, getattr(s, key, None))
        if key.startswith("min_"):
            assert got is True, (key, s)
        else:
            assert got == want, (key, got, want, reasons)
    assert s.token_confidence is None  # Claude Code exposes no log-probabilities


def test_vector_has_35_documented_dimensions_in_unit_range():
    assert len(VECTOR_NAMES) == len(set(VECTOR_NAMES)) == 35
    assert [d[0] for d in DIMENSIONS[:15]][:3] == ["reasoning_steps", "exploration_depth", "tool_calls"]
    assert all(len(d) == 3 and d[1] and d[2] for d in DIMENSIONS)
    for case in TRACES:
        t = view(case)
        vec = vector(t, extract(t))
        assert len(vec) == 35 and all(0.0 <= x <= 1.0 for x in vec)


def test_cosine_separates_behaviours():
    by_id = {c["id"]: view(c) for c in TRACES}
    vec = {k: vector(t, extract(t)) for k, t in by_id.items()}
    assert cosine(vec["thorough"], vec["thorough"]) == pytest.approx(1.0)
    # two reading-heavy traces are closer to each other than to an answer without tools
    assert cosine(vec["thorough"], vec["exhaustive"]) > cosine(vec["thorough"], vec["answer-only"])
    assert cosine([0.0] * 35, vec["thorough"]) == 0.0


def test_gates_reasons_and_feedback():
    case = next(c for c in TRACES if c["id"] == "answer-only")
    t = view(case)
    s = extract(t)
    ok, reasons = decide(t, s, GateSettings())
    assert not ok and reasons[0].startswith("exclude: trivial (")
    t = view(case, feedback="up")
    ok, reasons = decide(t, s, GateSettings())
    assert ok and "include: rated up by the user" in reasons
    assert not decide(t, s, GateSettings(honour_feedback=False))[0]
    t = view(case, feedback="down")
    assert decide(t, s, GateSettings())[1][0] == "exclude: rated down by the user"
    failed = view(next(c for c in TRACES if c["id"] == "constraints-plan"), status="failed", feedback="up")
    ok, reasons = decide(failed, extract(failed), GateSettings())
    assert not ok and "exclude: errored or incomplete (status failed)" in reasons  # up never overrides this
    assert decide(view(TRACES[0]), extract(view(TRACES[0])), GateSettings(min_answer_words=5))[0]


def test_gates_configurable_in_settings_file(paths):
    from cc_capture.config import load_settings

    (paths.home / "config.toml").write_text("[gates]\nmin_answer_words = 10\nexclude_statuses = ['failed']\n")
    g = load_settings(paths).gates
    assert g.min_answer_words == 10 and g.exclude_statuses == ["failed"]


def _trace_events(paths, pid, prompt, answer, calls=(), transcript=None, session="s"):
    base = {"session_id": session, "prompt_id": pid, "cwd": "/w"}
    if transcript:
        base["transcript_path"] = str(transcript)
    emit(paths, {**base, "hook_event_name": "UserPromptSubmit", "prompt": prompt})
    for i, (name, inp) in enumerate(calls):
        call = {**base, "tool_name": name, "tool_use_id": f"{pid}-t{i}", "tool_input": inp}
        emit(paths, {**call, "hook_event_name": "PreToolUse"})
        emit(paths, {**call, "hook_event_name": "PostToolUse", "tool_response": {"stdout": "ok"}})
        emit(paths, {**base, "hook_event_name": "PostToolBatch", "tool_calls": [
            {"tool_name": name, "tool_input": inp, "tool_use_id": f"{pid}-t{i}", "tool_response": "ok"}]})
    if answer is not None:
        emit(paths, {**base, "hook_event_name": "Stop", "last_assistant_message": answer})


def test_signals_computed_when_a_trace_closes_and_again_when_reasoning_arrives(paths, db, tmp_path):
    transcript = tmp_path / "t.jsonl"
    _trace_events(paths, "p1", "Fix the bug in app.py", None, [("Read", {"file_path": "/w/app.py"}),
                                                               ("Bash", {"command": "pytest"})], transcript)
    ingest_all(paths)
    compute_pending(db, GateSettings())
    assert db.execute("SELECT count(*) FROM signals").fetchone() == (0,)  # still open
    emit(paths, {"session_id": "s", "prompt_id": "p1", "hook_event_name": "Stop", "last_assistant_message": "Fixed."})
    ingest_all(paths)
    compute_pending(db, GateSettings())
    first = trace_json(db, "p1")
    assert first["signals"]["constraints_detected"] == [] and first["extractor_version"] == EXTRACTOR_VERSION
    # The transcript (lagging) brings the text before the call; the trace is queued again.
    transcript.write_text("".join(json.dumps(line) + "\n" for line in [
        {"type": "user", "sessionId": "s", "promptId": "p1", "uuid": "u1",
         "message": {"role": "user", "content": "Fix the bug in app.py"}},
        {"type": "assistant", "sessionId": "s", "message": {"id": "m1", "content": [
            {"type": "text", "text": "I must not change the public API of app.py."},
            {"type": "tool_use", "id": "p1-t0", "name": "Read", "input": {}}]}}]))
    sync_sessions(db, {transcript})  # as the daemon's hot re-read does
    compute_pending(db, GateSettings())
    again = trace_json(db, "p1")
    assert again["signals"]["constraints_detected"] == ["I must not change the public API of app.py."]
    assert len(again["vector"]) == 35


def test_stale_finds_older_extractor_versions(paths, db):
    _trace_events(paths, "p1", "Explain the build system please", "It uses make.", [("Read", {"file_path": "/w/Makefile"})])
    ingest_all(paths)
    compute_pending(db, GateSettings())
    assert stale(db) == []
    db.execute("UPDATE signals SET extractor_version = 0")
    assert stale(db) == ["p1"] and stale(db, everything=True) == ["p1"]


def test_recompute_brings_older_extractor_rows_to_the_current_version(paths, db):
    """Traces computed by extractor v1 are stale under v2, and `ccd signals recompute` updates them."""
    _trace_events(paths, "p1", "Fix the flaky test", "Actually, the fixture was wrong; all tests pass now.",
                  [("Bash", {"command": "pytest -q"})])
    ingest_all(paths)
    compute_pending(db, GateSettings())
    db.execute("UPDATE signals SET extractor_version = 1, signals = json_set(signals, '$.self_corrections', json('[]'))")
    assert EXTRACTOR_VERSION >= 2 and stale(db) == ["p1"]
    assert json.loads(ccd("signals", "recompute", "--json").stdout)["computed"] == 1
    version, corrections = db.execute(
        "SELECT extractor_version, json_array_length(signals, '$.self_corrections') FROM signals").fetchone()
    assert version == EXTRACTOR_VERSION and corrections >= 1 and stale(db) == []


def test_cli_rate_show_list_stats_status_recompute(paths):
    _trace_events(paths, "p1", "Why is the nightly build red?", "Because the cache key changed; I pinned it.",
                  [("Read", {"file_path": "/w/ci.yml"}), ("Bash", {"command": "make build"})])
    _trace_events(paths, "p2", "ok", "Sure.")
    ccd("ingest")
    shown = json.loads(ccd("traces", "show", "p1", "--json").stdout)
    assert {"signals", "vector", "vector_names", "qualifies", "gate_reasons"} <= set(shown)
    assert shown["vector_names"] == VECTOR_NAMES and len(shown["vector"]) == 35 and shown["qualifies"] is True
    assert shown["signals"]["tool_sequence"] == ["Read", "Bash"] and shown["signals"]["token_confidence"] is None
    listed = {r["trace_id"]: r["qualifies"] for r in json.loads(ccd("traces", "list", "--json").stdout)}
    assert listed == {"p1": True, "p2": False}

    rated = json.loads(ccd("rate", "up", "--note", "short but right", "--json").stdout)  # default: latest completed
    assert rated["trace_id"] == "p2" and rated["qualifies"] is True
    assert json.loads(ccd("rate", "p1", "down", "--json").stdout)["qualifies"] is False
    shown = json.loads(ccd("traces", "show", "p1", "--json").stdout)
    assert shown["feedback"]["rating"] == "down" and shown["gate_reasons"][0] == "exclude: rated down by the user"
    bad = ccd("rate", "p1", "sideways", check=False)
    assert bad.returncode == 2 and "usage: ccd rate" in bad.stderr
    noted = json.loads(ccd("rate", "p1", "down", "read", "the", "wrong", "file", "--json").stdout)
    assert noted["note"] == "read the wrong file"

    stats = json.loads(ccd("stats", "--json").stdout)
    assert stats["tools"] == {"Read": 1, "Bash": 1} and stats["qualifying"]["qualifies"] == 1
    assert stats["gate_reasons"]["exclude: rated down by the user"] == 1
    assert json.loads(ccd("status", "--json").stdout)["qualifying"] == {"qualifies": 1, "excluded": 1, "pending": 0}
    assert json.loads(ccd("signals", "recompute", "--all", "--json").stdout)["computed"] == 2


def test_word_gates_change_no_detection(shared):
    """Each pattern runs only on sentences holding a literal of every set of words it needs (read
    off the regex itself): the sentences found, and each sentence's pattern hits (the
    classifier's features), must be exactly those every pattern on every sentence finds. Among
    the texts, characters a case-insensitive regex matches to an ASCII letter that str.lower()
    leaves alone ("ſ" is an "s", "ı" an "i", "İ" lowers to two characters)."""

    def every_pattern(text):
        found = {k: [] for k in phrases.KINDS}
        for s in phrases.sentences(text):
            for d in phrases.DETECTORS:
                if any(p.search(s) for p in d.patterns) and not any(x.search(s) for x in d.exclude):
                    found[d.kind].append(s)
        return found

    texts = [row["text"] for row in LABELLED]
    for f in (shared / "transcripts").rglob("*.jsonl"):
        for line in f.open(encoding="utf-8"):
            content = (json.loads(line).get("message") or {}).get("content")
            for block in content if isinstance(content, list) else [{"type": "text", "text": content or ""}]:
                if isinstance(block, dict) and block.get("type") in ("text", "thinking"):
                    texts.append(block.get("text") or block.get("thinking") or "")
    texts += ["I ſhould have run the tests first.", "In hındsight the cache was wrong.", "İ should have checked.",
              "Let me fırst read the file, then rewrıte it."]
    assert len(texts) > 500
    assert sum(bool(s) for t in texts for s in phrases.detect(t).values()) > 100  # not all empty
    for text in texts:
        assert phrases.detect(text) == every_pattern(text), text[:200]
        for s in phrases.sentences(text):
            assert phrases.pattern_hits(s)[0] == [i for i, p in enumerate(phrases.PATTERNS) if p.search(s)], s
    assert phrases.detect(texts[-4])["self_critique"] and phrases.detect(texts[-1])["plan"]


def test_sentence_split_is_its_rule(shared):
    """Sentences end at white space after [.!?] before [A-Z0-9"'`(], or at line breaks: the
    regex written for speed splits every text as the rule written plainly does (real texts, and
    random strings of the characters that matter, Unicode white space among them)."""
    import random
    import re

    rule = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'`(])|\n+")
    texts = [row["text"] for row in LABELLED] + [r.text for r in REAL]
    alphabet = "aA1.!?\" ('`\n\t\r\x0b\x0c\u00a0\u2028\u0085\x1cZé"
    rnd = random.Random(14)
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14))) for _ in range(30000)]
    for text in texts:
        assert phrases._SENTENCE_RE.split(text) == rule.split(text), repr(text)


def test_check_commands_gate_changes_no_kind(shared):
    """A check command's regexes run only on commands holding a word they need: every shell
    command of the real transcripts gets the kind the first matching regex gives."""
    from cc_capture.signals.extract import _CHECK_COMMANDS, check_kind

    commands = ["make", "make test", "MAKE TEST", "cargo nextest run", "./gradlew test", "g++ -O2 x.cc", "tsc -b",
                "ruff format .", "ruff check .", "npm run type-check", "python -m build", "echo pytest"]
    for f in [*(shared / "transcripts").rglob("*.jsonl"), *(shared / "transcripts-more").rglob("*.jsonl")]:
        for line in f.open(encoding="utf-8"):
            content = (json.loads(line).get("message") or {}).get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("name") == "Bash":
                    commands.append(str((block.get("input") or {}).get("command") or ""))
    assert len(commands) > 200
    kinds = [next((kind for kind, rx in _CHECK_COMMANDS if command and rx.search(command)), None) for command in commands]
    assert sum(k is not None for k in kinds) > 10  # not all None
    assert [check_kind(call("Bash", {"command": command})) for command in commands] == kinds


def test_words_a_pattern_needs():
    def words(pattern):
        return phrases._required_words(phrases._sre_parse.parse(pattern, 0))

    assert words(r"\b(?:option|approach) (?:a|b|1|2)\b.{0,80}\bbetter") == {"option ", "approach "}
    # the parser factors "ha" out of has|have|had: the words are rebuilt around the branch
    assert words(r"\b(?:has|have|had) to\b") == {"has to", "have to", "had to"}
    assert words(r"\bwithout (?:breaking|changing)\b") == {"without breaking", "without changing"}
    assert words(r"(?<![-\w])verif(?:y|ied)\b") == {"verify", "verified"}
    assert words(r"\b(?:I|we) (?:would )?prefer\b") == {"prefer"}
    assert words(r"^\s*$") is None  # nothing required: such a pattern always runs
    assert not phrases._GATE.always  # every detector pattern today has words to gate on
