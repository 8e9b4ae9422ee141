"""Our redactor against established secret scanners, on the same labelled set, in one run.

    .venv/bin/pip install -e ".[redaction-bench]"   # detect-secrets and CredSweeper: this benchmark only
    python benchmarks/redaction_compare.py [--add-unlabelled] [--only NAME ...] [--workers N] [--cached]
                                           [--sample K]

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
look-alikes (tests/fixtures/not_secrets.txt) flagged; throughput in MB of text per CPU second
(CPU time, summed over the worker processes the corpus is split between: a shared machine's
load changes wall time, not this). Items a scanner flags that are not labelled yet are counted
apart (and added, unlabelled, with --add-unlabelled, for a person to label by LABELLING.md).
Each scanner's spans and CPU time are kept in benchmarks/.redaction-cache/ (git-ignored);
--cached scores them again without scanning (after labelling), saying so.
--sample K scans one line in K (fixed by the hash of file and line number) for every detector,
for precision and throughput, where the scanners are too slow for all of it on a busy machine;
recall is then measured on every string holding a labelled secret or personal address.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redaction_set as rs  # noqa: E402

FIXTURES = rs.REPO / "tests" / "fixtures"
CACHE = Path(__file__).resolve().parent / ".redaction-cache"


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


def _quiet() -> None:
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)


def _scan_part(name: str, part: list[rs.Text]) -> tuple[list[list[rs.Span]], float]:
    """One worker's share: the spans, and the CPU seconds they took."""
    _quiet()
    detector = DETECTORS[name]()
    t0 = time.process_time()
    spans = detector(part)
    return spans, time.process_time() - t0


def scan(name: str, corpus: list[rs.Text], workers: int) -> tuple[list[list[rs.Span]], float]:
    """The detector over the corpus, split in contiguous parts between worker processes."""
    if workers <= 1:
        return _scan_part(name, corpus)
    size = -(-len(corpus) // (workers * 4))
    parts = [corpus[i:i + size] for i in range(0, len(corpus), size)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_scan_part, [name] * len(parts), parts))
    return [spans for part, _ in results for spans in part], sum(cpu for _, cpu in results)


def sample(corpus: list[rs.Text], k: int) -> list[rs.Text]:
    """One transcript line in k, fixed by the hash of its file and number."""
    keep = {}
    for t in corpus:
        key = (t.source, t.line)
        if key not in keep:
            keep[key] = int(hashlib.sha256(f"{t.source}:{t.line}".encode()).hexdigest()[:8], 16) % k == 0
    return [t for t in corpus if keep[(t.source, t.line)]]


def recall_strings(corpus: list[rs.Text], where: dict) -> list[rs.Text]:
    """Every string that holds a labelled secret or personal address."""
    places = {loc for occurrences in where.values() for loc, _ in occurrences}
    return [t for t in corpus if (t.source, t.line, t.path) in places]


def _cache_file(name: str, corpus: list[rs.Text]) -> Path:
    return CACHE / f"{name}-{len(corpus)}-{sum(len(t.text) for t in corpus)}.json"


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
    ap.add_argument("--workers", type=int, default=2, help="processes the scanners' work is split between")
    ap.add_argument("--cached", action="store_true", help="score the scanners' kept spans, without scanning")
    ap.add_argument("--sample", type=int, default=1, help="scan one line in K (precision, throughput)")
    args = ap.parse_args()
    _quiet()
    everything = list(rs.texts())
    items = rs.load()
    where = rs.secret_occurrences(everything, items)
    corpus = sample(everything, args.sample) if args.sample > 1 else everything
    holding = recall_strings(everything, where)
    secrets, look_alikes = fixture_texts()
    mb = sum(len(t.text) for t in corpus) / 1e6
    print(f"{len(corpus):,} strings ({mb:.1f} MB) of {len(rs.transcript_files())} real transcript files"
          f"{f' (one line in {args.sample})' if args.sample > 1 else ''}; {len(items)} labelled items; "
          f"{len(holding)} strings hold a labelled secret or address; {len(secrets)} corpus secrets, "
          f"{len(look_alikes)} look-alikes\n")
    added = 0
    for name in args.only or DETECTORS:
        try:
            detector = DETECTORS[name]()
        except ImportError as e:
            print(f"{name:<16} not installed ({e.name}): pip install -e '.[redaction-bench]'")
            continue
        cache = _cache_file(name, corpus)
        if args.cached and name != "cc-capture" and cache.exists():
            kept = json.loads(cache.read_text())
            found_spans = [[rs.Span(*s) for s in spans] for spans in kept["spans"]]
            cpu, note = kept["cpu_s"], f" (kept from {kept['at']})"
        else:
            found_spans, cpu = scan(name, corpus, 1 if name == "cc-capture" else args.workers)
            note = ""
            if name != "cc-capture":
                CACHE.mkdir(exist_ok=True)
                cache.write_text(json.dumps({"at": time.strftime("%Y-%m-%d %H:%M"), "cpu_s": cpu,
                                             "spans": [[[s.start, s.end] for s in spans] for spans in found_spans]}))
        found = rs.run(detector, corpus, items, found_spans)
        if args.sample > 1:  # recall on every string holding a positive; precision on the sample
            caught = rs.run(detector, holding, items)
            recall = {s.split: s for s in rs.score(caught, items, where)}
        corpus_caught = sum(_covers(spans, t.text, secret)
                            for (t, secret), spans in zip(secrets, detector([t for t, _ in secrets])))
        flagged_alikes = sum(bool(spans) for spans in detector(look_alikes))
        for score in rs.score(found, items, where):
            if args.sample > 1:
                r = recall[score.split]
                score.secrets, score.caught, score.personal, score.personal_caught = (
                    r.secrets, r.caught, r.personal, r.personal_caught)
            print(score.line(name))
        print(f"{name:<16} corpus   recall {corpus_caught / len(secrets):.3f} ({corpus_caught}/{len(secrets)})  "
              f"look-alikes flagged {flagged_alikes}/{len(look_alikes)}  throughput {mb / cpu:.2f} MB per CPU s "
              f"({cpu:.1f} CPU s{note})\n")
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
