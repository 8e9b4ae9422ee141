"""Our redactor against established secret scanners, on the same labelled set, in one run.

    .venv/bin/pip install -e ".[redaction-bench]"   # detect-secrets and CredSweeper: this benchmark only
    python benchmarks/redaction_compare.py [--add-unlabelled] [--only NAME ...]

Detectors: cc-capture (`redact_value`, as the store applies it to every string), detect-secrets
1.5 (Yelp; every default plugin: keyword, high-entropy strings and the format detectors, on
each line as its file scanner runs them) and CredSweeper 1.19 (Samsung; its rules, then its ML
validation as its own `post_processing` applies it). Each is given every string of every line
of the real transcripts (benchmarks/redaction_set.py) and prints, per split of the labelled set
(tests/fixtures/redaction/labelled.jsonl):
  precision  flagged items labelled secret or personal / flagged items labelled;
  recall     labelled secrets (and personal addresses) caught at every occurrence / all of them
             (the pool: what any detector flagged, labelled by meaning);
and, on the fixtures: the secrets corpus (tests/fixtures/secrets.txt) caught whole, the
look-alikes (tests/fixtures/not_secrets.txt) flagged; throughput in MB/s of text scanned.
Items a scanner flags that are not labelled yet are counted apart (and added, unlabelled, with
--add-unlabelled, for a person to label by LABELLING.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redaction_set as rs  # noqa: E402

FIXTURES = rs.REPO / "tests" / "fixtures"


def _line_starts(text: str) -> tuple[list[str], list[int]]:
    lines = text.split("\n")
    starts, at = [], 0
    for line in lines:
        starts.append(at)
        at += len(line) + 1
    return lines, starts


def detect_secrets_detector() -> rs.Detector:
    from detect_secrets.core import scan
    from detect_secrets.settings import default_settings, get_settings

    def detect(corpus: list[rs.Text]) -> list[list[rs.Span]]:
        out = []
        with default_settings():
            # as scan_line does for text that is no file on disk
            get_settings().disable_filters("detect_secrets.filters.common.is_invalid_file")
            scan.get_filters.cache_clear()
            for t in corpus:
                lines, starts = _line_starts(t.text)
                spans = []
                for secret in scan._process_line_based_plugins(list(enumerate(lines, 1)), filename="transcript"):
                    line = lines[secret.line_number - 1]
                    at = line.find(secret.secret_value) if secret.secret_value else -1
                    if at >= 0:
                        start = starts[secret.line_number - 1] + at
                        spans.append(rs.Span(start, start + len(secret.secret_value)))
                out.append(spans)
        return out

    return detect


def credsweeper_detector() -> rs.Detector:
    from credsweeper.app import CredSweeper
    from credsweeper.file_handler.string_content_provider import StringContentProvider

    def detect(corpus: list[rs.Text]) -> list[list[rs.Span]]:
        sweeper = CredSweeper()
        candidates = []
        for i, t in enumerate(corpus):
            candidates += sweeper.file_scan(StringContentProvider(t.text.split("\n"), file_path=f"{i}"))
        sweeper.credential_manager.set_credentials(candidates)
        sweeper.post_processing(None)  # its ML validation
        out: list[list[rs.Span]] = [[] for _ in corpus]
        starts_of: dict[int, list[int]] = {}
        for cand in sweeper.credential_manager.get_credentials():
            for ld in cand.line_data_list:
                i = int(ld.path)
                if i not in starts_of:
                    starts_of[i] = _line_starts(corpus[i].text)[1]
                start = starts_of[i][ld.line_num - 1] + ld.value_start
                out[i].append(rs.Span(start, start + len(ld.value)))
        return out

    return detect


DETECTORS = {"cc-capture": rs.ours, "detect-secrets": detect_secrets_detector, "credsweeper": credsweeper_detector}


def fixture_texts() -> tuple[list[tuple[rs.Text, str]], list[rs.Text]]:
    secrets = []
    for line in (FIXTURES / "secrets.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            kind, text, secret = line.split("\t")
            secrets.append((rs.Text("secrets.txt", 0, kind, None, text.replace("\\n", "\n")), secret))
    look_alikes = [rs.Text("not_secrets.txt", 0, "", None, line)
                   for line in (FIXTURES / "not_secrets.txt").read_text().splitlines() if line and not line.startswith("#")]
    return secrets, look_alikes


def _covers(spans: list[rs.Span], text: str, secret: str) -> bool:
    """Every occurrence of the secret removed whole (no character of it left)."""
    at = text.find(secret)
    while at >= 0:
        if any(not any(s.start <= i < s.end for s in spans) for i in range(at, at + len(secret))):
            return False
        at = text.find(secret, at + 1)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=list(DETECTORS), help="run only these detectors")
    ap.add_argument("--add-unlabelled", action="store_true", help="add flagged items not in the set, unlabelled")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    corpus = list(rs.texts())
    items = rs.load()
    where = rs.secret_occurrences(corpus, items)
    secrets, look_alikes = fixture_texts()
    mb = sum(len(t.text) for t in corpus) / 1e6
    print(f"{len(corpus):,} strings ({mb:.1f} MB) of {len(rs.transcript_files())} real transcript files; "
          f"{len(items)} labelled items; {len(secrets)} corpus secrets, {len(look_alikes)} look-alikes\n")
    added = 0
    for name in args.only or DETECTORS:
        try:
            detector = DETECTORS[name]()
        except ImportError as e:
            print(f"{name:<16} not installed ({e.name}): pip install -e '.[redaction-bench]'")
            continue
        t0 = time.perf_counter()
        found_spans = detector(corpus)
        seconds = time.perf_counter() - t0
        found = rs.run(detector, corpus, items, found_spans)
        corpus_caught = sum(_covers(spans, t.text, secret)
                            for (t, secret), spans in zip(secrets, detector([t for t, _ in secrets])))
        flagged_alikes = sum(bool(spans) for spans in detector(look_alikes))
        for score in rs.score(found, items, where):
            print(score.line(name))
        print(f"{name:<16} corpus   recall {corpus_caught / len(secrets):.3f} ({corpus_caught}/{len(secrets)})  "
              f"look-alikes flagged {flagged_alikes}/{len(look_alikes)}  throughput {mb / seconds:.2f} MB/s "
              f"({seconds:.1f} s)\n")
        if args.add_unlabelled:
            for iid, item in found.new.items():
                item.found_by = [name]
                items[iid] = item
                added += 1
            for iid in found.items:
                if name not in items[iid].found_by:
                    items[iid].found_by.append(name)
    if args.add_unlabelled:
        rs.save(items)
        print(f"{added} unlabelled items added to {rs.LABELS}")


if __name__ == "__main__":
    main()
