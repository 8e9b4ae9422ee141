"""The labelled redaction set (tests/fixtures/redaction): our rules on the real transcripts."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import redaction_set as rs  # noqa: E402


@pytest.fixture(scope="module")
def scored(request):
    corpus = list(rs.texts())
    items = rs.load()
    found = rs.run(rs.ours(), corpus, items)
    return found, items, {s.split: s for s in rs.score(found, items, rs.secret_occurrences(corpus, items))}


def test_the_set_is_labelled_and_split_before_tuning():
    items = rs.load()
    assert len(items) >= 40
    assert all(i.label in ("secret", "personal", "not_secret") and i.rule for i in items.values())
    assert all(i.split == rs.split_of(i.source) for i in items.values())
    # the old rules' redactions (found_by ccd-v1) are all in it, both splits
    old = [i for i in items.values() if "ccd-v1" in i.found_by]
    assert len(old) == 20 and {i.split for i in old} == {"tuning", "untuned"}


def test_every_redaction_on_real_transcripts_is_labelled(scored):
    found, items, _ = scored
    assert not found.new, [i.value for i in found.new.values()]


def test_precision_and_recall_on_real_text(scored):
    """Goals: precision >= 0.95 on the untuned split; every labelled secret and personal address
    caught wherever it occurs (both splits)."""
    _, _, by_split = scored
    untuned = by_split["untuned"]
    assert untuned.flagged >= 10 and untuned.precision >= 0.95
    for s in by_split.values():
        assert s.caught == s.secrets and s.personal_caught == s.personal
    assert sum(s.secrets for s in by_split.values()) >= 4
